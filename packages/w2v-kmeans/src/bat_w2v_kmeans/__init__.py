"""bat-w2v-kmeans: speech-encoder frames of time-expanded bat recordings -> k-means tokens."""

from bat_w2v_kmeans.__about__ import __version__
from bat_w2v_kmeans.codebook import Codebook, CodebookInfo
from bat_w2v_kmeans.encode import encode_dataset, run_lengths
from bat_w2v_kmeans.encoder import SpeechEncoder
from bat_w2v_kmeans.kmeans import Reservoir, fit_kmeans
from bat_w2v_kmeans.tokenizer import W2VKMeansTokenizer

__all__ = ["Codebook", "CodebookInfo", "Reservoir", "SpeechEncoder", "W2VKMeansTokenizer", "__version__",
           "encode_dataset", "fit_kmeans", "run_lengths"]
