"""FrechetScorer: the Fréchet distance to a fixed reference set in a classifier's features."""

from __future__ import annotations

import torch

from companion.evaluation import FrechetScorer, frechet_distance
from companion.models import FashionClassifier
from companion.models.classifier import extract_features


def test_scorer_matches_the_distance_of_the_features_and_orders_sets():
    torch.manual_seed(0)
    classifier = FashionClassifier().eval()  # untrained: any fixed feature map will do
    reference = torch.rand(300, 1, 28, 28) * 0.5
    scorer = FrechetScorer(reference, classifier=classifier)
    similar = torch.rand(300, 1, 28, 28) * 0.5
    different = torch.rand(300, 1, 28, 28) * 0.5 + 0.5
    expected = frechet_distance(
        extract_features(classifier, reference), extract_features(classifier, similar)
    )
    assert abs(scorer.distance(similar) - expected) < 1e-6 * (1 + expected)
    assert scorer.distance(reference) < 1e-6
    assert scorer.distance(similar) < scorer.distance(different)
