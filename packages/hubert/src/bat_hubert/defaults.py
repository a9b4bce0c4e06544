"""Defaults shared by the CLI and the library; imports nothing, so ``--help`` stays instant."""

from __future__ import annotations

MODEL_RATE = 16_000  # the rate every speech encoder bat-w2v-kmeans loads expects
SAMPLES_PER_FRAME = 320  # 20 ms at 16 kHz: the conv front-end's stride, and the targets' hop
FRAME_SAMPLES = 400  # the conv front-end's receptive field, and the targets' window

# Time expansion x30, not the x15 that auto picks for a 16 kHz model: bat-hubert learns from scratch, so no speech
# time scale binds it, and a frame is 0.67 ms of the recording instead of 1.33 (a 2-5 ms call is 3-7 frames). At x30
# its layer-0 tokens tell shared/bats calls from background above MFCC + k-means (0.739 against 0.703, six seeds) and
# keep the demo's call types (1.000); at x15, 0.663 and 0.861 (BENCHMARKS.md, "The band's top low-passed"). The band above
# 120 kHz is low-passed away (bat-core's --band), else each recording's sample rate decides where its model band
# goes empty, and at x30 the encoder learnt the recorder instead of the call. Recorded in the folder: bat-w2v-kmeans
# adopts it. It doubles the model audio per recording.
TIME_EXPANSION = "30"

# Training crops: 0.5 s of model audio (25 frames; most shared/bats clips are 0.75 s once expanded x30, and
# padding costs as much compute as audio). Recordings are cut into crops as they stream past; a recording's
# tail (and a whole short clip) is kept down to one frame and padded, its padding masked out.
CROP_SECONDS = 0.5
MAX_CROPS = 8000  # the reservoir (HashedSample) of crops: 8000 x 0.5 s x 4 bytes = 256 MB at most
HELD_BACK_FRACTION = 0.1  # crops kept out of training to measure masked-frame accuracy

# The small default model: measured on shared/bats (617 s of model audio) on a 2-core CPU (README).
HIDDEN_SIZE = 256
LAYERS = 4
HEADS = 4
INTERMEDIATE_SIZE = 1024
CONV_CHANNELS = 64
EPOCHS = 3  # per iteration
# ...raised on a small corpus so that an iteration takes at least MIN_STEPS optimiser steps: on the 24-file demo
# (28 steps per epoch) 3 epochs left the held-back masked accuracy at chance on six seeds, 10 learnt; shared/bats
# (71 steps per epoch) learns at its 3 epochs (BENCHMARKS.md, "Recipe screen").
MIN_STEPS = 200
ITERATIONS = 2
BATCH_SIZE = 16
LEARNING_RATE = 5e-4
WARMUP_FRACTION = 0.1

# Targets: iteration 1 clusters log-mel frames, later iterations a middle layer's features (fairseq HuBERT:
# 100 clusters of MFCC, then 500 of layer 6 of 12).
MELS = 40
# Iteration 0 (frontend.py): the convolutions regress each frame's log-mel first. On shared/bats 400 steps (73-80 s
# on one thread) took the front-end's held-back error to 0.20 of each band's variance, and its features from a
# 0.61 to a 0.73 call-vs-background probe (random convolutions: 0.59; BENCHMARKS.md, "Iteration 0").
FRONTEND_STEPS = 400
FRONTEND_LEARNING_RATE = 1e-3
CLUSTERS = (50, 100)  # per iteration; the last repeats for further iterations
MAX_FIT_FRAMES = 50_000

# Masking as fairseq HuBERT (mask_prob 0.8, mask_length 10 of ~12 s crops) scaled to 0.5 s crops: spans of 5 frames.
MASK_PROB = 0.65
MASK_LENGTH = 5

DEFAULT_MODEL_NAME = "bat_hubert"  # derived/models/bat_hubert
TRAINING_JSON = "bat_hubert_training.json"
