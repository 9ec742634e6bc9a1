from allennlp_structkd.kd.losses import (
    EmissionKD,
    KDLoss,
    MixtureKD,
    PosteriorKD,
    PosteriorTopWK,
    StructuralKD,
    TokenKD,
    Top1KD,
    TopKKD,
    WeightedTopKKD,
)
from allennlp_structkd.kd.xtremedistil_loss import XtremeDistilKD
from allennlp_structkd.structures.potentials import Constraints, Potentials
