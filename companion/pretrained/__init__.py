"""What ships with the package: trained weights (``load_*``, each a model in eval mode)
and the records of the training runs and benchmarks (:func:`load_record`)."""

from companion.pretrained.loaders import (
    load_dcgan,
    load_deep_autoencoder,
    load_fashion_classifier,
    load_flow,
    load_made,
    load_pixelcnn,
    load_pixelrnn,
    load_record,
    load_vae,
    record_names,
)

__all__ = [
    "load_dcgan",
    "load_deep_autoencoder",
    "load_fashion_classifier",
    "load_flow",
    "load_made",
    "load_pixelcnn",
    "load_pixelrnn",
    "load_vae",
    "load_record",
    "record_names",
]
