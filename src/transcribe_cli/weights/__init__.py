"""Model weights: the Hugging Face hub cache (``hub``), model URIs (``uri``), checkpoint
metadata (``checkpoint_meta``) and model cards (``cards``)."""
