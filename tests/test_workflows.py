"""The GitHub workflows that cannot run here: parsed and checked for what they must do."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads `on:` as True
    return workflow


def steps(job: dict) -> list[dict]:
    return job["steps"]


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def test_colab_workflow_runs_weekly_and_on_demand():
    triggers = load("colab.yml")["on"]
    assert "workflow_dispatch" in triggers
    (schedule,) = triggers["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert (day, month) == ("*", "*") and weekday not in {"*", ""}, "once a week"


def test_colab_workflow_runs_every_notebook_in_colabs_image_from_the_commit():
    (job,) = load("colab.yml")["jobs"].values()
    assert job["container"]["image"].startswith("us-docker.pkg.dev/colab-images/public/runtime")
    script = runs(job)
    assert "scripts/student_env.py" in script
    assert "--install-source" in script and "${{ github.sha }}" in script
    assert "--python" in script  # Colab's own interpreter, not a fresh venv


def test_colab_workflow_opens_an_issue_on_failure():
    workflow = load("colab.yml")
    (job,) = workflow["jobs"].values()
    failure = [s for s in steps(job) if s.get("if") == "failure()"]
    assert failure and "issue" in failure[0]["uses"]
    assert failure[0]["with"]["content-filepath"].endswith("report.md")
    assert workflow["permissions"]["issues"] == "write"


def test_book_workflow_runs_the_student_environment_and_publishes_the_jupyter_edition():
    jobs = load("book.yml")["jobs"]
    assert "make test" in runs(jobs["test"]) and "if" not in jobs["test"]  # PRs and pushes
    assert "whl/cpu" in runs(jobs["test"]), "the student venv must not pull a CUDA torch"
    publish = runs(jobs["jupyter-edition"])
    assert "make jupyter-edition" in publish
    branch = CONFIG["repository"]["branch"]
    assert f"{branch}:{branch}" in publish, "the launch buttons open repository.branch"
    assert jobs["jupyter-edition"]["permissions"]["contents"] == "write"
    assert '-jupyter"' in publish, "a release tag gets its edition as <tag>-jupyter"
    assert "v*" in load("book.yml")["on"]["push"]["tags"]
