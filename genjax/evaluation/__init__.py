"""Evaluation: metric formulas (FID, IS, KID, precision/recall) and feature extractors.

  from genjax.evaluation import compute_metrics, inception
  extractor = inception.inception_extractor("inception_fid.npz")   # or metrics.Extractor(my_fn)
  compute_metrics(extractor, real_batches, fake_batches)  # {"fid", "is", "is_std", "kid", ...}

`inception` (Flax) is imported on first use of `genjax.evaluation.inception`.
"""

from genjax.evaluation.metrics import (METRICS, EvaluationError, Extractor, FeatureSet, RunningStats,
                                       compute_metrics, extract, fid, fid_from_stats, frechet_distance,
                                       inception_score, inception_score_from_probs,
                                       kernel_inception_distance, mean_and_cov, metrics_from_features,
                                       precision_recall)

__all__ = [
    "METRICS", "EvaluationError", "Extractor", "FeatureSet", "RunningStats", "compute_metrics", "extract",
    "fid", "fid_from_stats", "frechet_distance", "inception_score", "inception_score_from_probs",
    "kernel_inception_distance", "mean_and_cov", "metrics_from_features", "precision_recall",
]
