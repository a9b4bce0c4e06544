"""Defaults and names shared by the CLI and the library; imports nothing, so ``--help`` stays instant."""

from __future__ import annotations

DEFAULT_MODEL = "facebook/wav2vec2-base"
REPRESENTATION = "w2v_kmeans"  # tokens: derived/tokens/w2v_kmeans_<stem>.npy; --tag NAME: w2v_kmeans-NAME
SUPPORTED_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")  # transformers' config.model_type

# Recordings reach the model in windows of this much model audio: about the longest crop wav2vec2 and
# HuBERT saw in pretraining (250,000 samples). A 60 s input in 30 s windows took 25% more time and
# 300 MB more peak memory than in 15 s windows (base model, CPU).
WINDOW_SECONDS = 15.0
OVERLAP_SECONDS = 1.0  # neighbouring windows share this much; each keeps the frames of its own half
BUCKET_SECONDS = 0.25  # run lengths are rounded up to this: little padding, few distinct batch shapes

DEFAULT_K = 128
DEFAULT_MAX_FIT_FRAMES = 50_000
DEFAULT_BATCH_SIZE = 8
