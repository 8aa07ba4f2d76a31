"""The diffusion benchmark's tables (companion.pretrained.tables) show the records' numbers."""

import pytest

from companion.pretrained import load_record
from companion.pretrained.tables import diffusion_coverage_table, diffusion_fashion_table

FASHION = {
    "models": {
        "A": {"n_samples": 500, "frechet": 61.86, "frechet_at_100": 80.3,
              "sampling_ms_per_image": 160.4},
        "B": {"n_samples": 100, "frechet": 38.83, "frechet_at_100": 38.83,
              "sampling_ms_per_image": 0.0104},
    },
    "train_vs_test_floor_by_n": {"500": 4.446, "100": 28.255},
    "n_compared_alike": 100,
    "targets": {"dcgan_frechet": 61.7},
}  # fmt: skip


def test_fashion_table_rows_written_by_hand():
    text = diffusion_fashion_table(FASHION)
    lines = text.splitlines()
    assert lines[0] == "| model | n samples | Fréchet at n | Fréchet at n = 100 | ms per image |"
    assert lines[2] == "| A | 500 | 61.9 | 80.3 | 160 |"
    assert lines[3] == "| B | 100 | 38.8 | 38.8 | 0.0104 |"
    # floors in increasing n, whatever the record's order
    assert "28.3 at n = 100, 4.4 at n = 500." in text
    assert "61.7" in text


def test_fashion_table_of_the_shipped_record_has_every_model():
    record = load_record("diffusion_fashion")
    text = diffusion_fashion_table(record)
    for name, row in record["models"].items():
        line = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {row['n_samples']:,} | {row['frechet']:.1f} |" in line


def test_wrong_record_is_named():
    with pytest.raises(KeyError, match="diffusion_fashion"):
        diffusion_fashion_table({"summary": {}})
    with pytest.raises(KeyError, match="diffusion_mode_coverage"):
        diffusion_coverage_table(FASHION)
    with pytest.raises(TypeError, match="load_record"):
        diffusion_coverage_table([1, 2])


def _summary(modes, quality, seconds, seeds=3):
    return {"seeds": seeds, "modes_mean": modes, "modes_min": int(modes),
            "high_quality_mean": quality, "high_quality_min": quality - 0.01,
            "seconds_mean": seconds}  # fmt: skip


def test_coverage_table_puts_diffusion_beside_every_gan_trick():
    gan = {"vanilla": {"ring": {"modes_mean": 0.67, "modes_min": 0, "high_quality_mean": 0.0247,
                                "seconds_mean": 80.0},
                       "grid": {"modes_mean": 20.67, "modes_min": 19, "high_quality_mean": 0.618,
                                "seconds_mean": 100.0}}}  # fmt: skip
    record = {
        "summary": {"ring": _summary(8, 0.95, 40.0), "grid": _summary(25, 0.91, 60.0)},
        "gan_summary": gan,
        "gan_steps": 5000,
        "protocol": {"steps": 5000, "sampler": "ancestral, all T levels"},
        "complete": True,
    }
    lines = diffusion_coverage_table(record).splitlines()
    assert lines[2] == (
        "| **diffusion (DDPM)** | 5,000 | 8.0 (min 8) | 95% (min 94%) | 25.0 (min 25) "
        "| 91% (min 90%) | 50 |"
    )
    assert lines[3] == "| GAN, vanilla | 5,000 | 0.7 (min 0) | 2% | 20.7 (min 19) | 62% | 90 |"
    assert "seeds 3 on the ring, 3 on the grid;" in lines[-1] and "unfinished" not in lines[-1]
    record["complete"] = False
    del record["summary"]["grid"]
    text = diffusion_coverage_table(record)
    assert "unfinished" in text
    assert "| **diffusion (DDPM)** | 5,000 | 8.0 (min 8) | 95% (min 94%) | — | — | 40 |" in text


def test_coverage_by_budget_table_rows_from_hand_written_records():
    from companion.pretrained.tables import coverage_by_budget_table

    def diffusion(steps, ring, grid):
        return {
            "protocol": {"steps": steps},
            "summary": {
                "ring": {"modes_mean": ring[0], "modes_min": ring[1], "high_quality_mean": ring[2]},
                "grid": {"modes_mean": grid[0], "modes_min": grid[1], "high_quality_mean": grid[2]},
            },
        }

    gan = {
        "eval_at": [5000, 20000],
        "summary": {
            "vanilla": {
                m: {
                    "5000": {"modes_mean": 1.5, "high_quality_mean": 0.1},
                    "20000": {"modes_mean": 3.0, "high_quality_mean": 0.2},
                }
                for m in ("ring", "grid")
            }
        },
        "runs": [
            {"trick": "vanilla", "mixture": m, "along_the_run": {"5000": {"modes": k},
                                                                 "20000": {"modes": 2 * k}}}
            for m in ("ring", "grid")
            for k in (1, 2)
        ],
    }  # fmt: skip
    text = coverage_by_budget_table(
        [
            diffusion(20000, (8, 8, 0.99), (25, 25, 0.96)),
            diffusion(5000, (8, 8, 0.72), (5, 4, 0.17)),
        ],
        gan,
    )
    rows = [line for line in text.splitlines() if line.startswith("| ")][1:]
    assert rows[0] == "| **diffusion (DDPM)** | 5,000 | 8.0 (min 8) | 72.0% | 5.0 (min 4) | 17.0% |"
    assert rows[1].startswith("| **diffusion (DDPM)** | 20,000 | 8.0 (min 8) | 99.0% | 25.0")
    assert rows[2] == "| GAN, vanilla | 5,000 | 1.5 (min 1) | 10.0% | 1.5 (min 1) | 10.0% |"
    assert rows[3] == "| GAN, vanilla | 20,000 | 3.0 (min 2) | 20.0% | 3.0 (min 2) | 20.0% |"
    with pytest.raises(KeyError, match="load_record"):
        coverage_by_budget_table([], {"summary": {}})
