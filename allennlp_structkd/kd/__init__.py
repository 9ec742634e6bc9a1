from allennlp_structkd.kd.losses import (
    EmissionKD,
    KDLoss,
    MixtureKD,
    PosteriorKD,
    PosteriorTopWK,
    StructuralKD,
    Top1KD,
    TokenKD,
    TopKKD,
    WeightedTopKKD,
)
from allennlp_structkd.kd.potentials import Constraints, Potentials
from allennlp_structkd.kd.xtremedistil_loss import XtremeDistilKD
