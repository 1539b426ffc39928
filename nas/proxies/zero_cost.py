"""Zero-cost proxies, each written from its paper, and the params / MACs baselines.

Conventions shared by all (as in Abdelfattah et al., "Zero-Cost Proxies for
Lightweight NAS", ICLR 2021, which evaluated most of them side by side):

- "weights" are the weights of Conv2d and Linear layers; biases and BN
  affine parameters are not scored;
- data-dependent proxies use the candidate's batch with the net in train
  mode (BN normalises with batch statistics) and cross-entropy loss;
- every score is oriented so that higher predicts higher accuracy, and is
  returned as a finite float. Scores that span many orders of magnitude
  (synflow) are returned as natural logarithms, which keeps rankings and
  makes them safe to store as JSON;
- "activations" are the nets' nonlinearities (ReLU, ReLU6, h-swish, swish)
  outside squeeze-excite modules, whose gates are not feature maps.

One module per family, imported here in this order (which is the order the
proxies are registered in):

- :mod:`nas.proxies.baselines`: params, macs;
- :mod:`nas.proxies.saliency`: grad_norm, snip, grasp, fisher, synflow;
- :mod:`nas.proxies.patterns`: naswot, jacob_cov;
- :mod:`nas.proxies.expressivity`: zen, zico, swap, meco, meco_opt;

and what they read of a net in :mod:`nas.proxies.layers`. Every name this
module held before the split is still importable from it.
"""

from __future__ import annotations

from nas.errors import ProxyError
from nas.proxies.base import Candidate, finite, register_proxy

# the families register their proxies as they are imported: this order is the registration order
# isort: off
from nas.proxies.baselines import macs, params
from nas.proxies.saliency import (
    _HardSigmoid,
    _HardSwish,
    _linearised,
    _twice_differentiable,
    fisher,
    grad_norm,
    grasp,
    snip,
    synflow,
)
from nas.proxies.patterns import jacob_cov, naswot
from nas.proxies.expressivity import (
    _features,
    _meco,
    _min_correlation_eigenvalue,
    meco,
    meco_opt,
    swap,
    zen,
    zico,
)

# isort: on
from nas.proxies.layers import ACTIVATIONS, activations, weight_grads, weight_layers
from nas.proxies.layers import forward_seen_by as _forward_seen_by
from nas.proxies.layers import loss_backward as _loss_backward
from searchspace.torch_modules import SEModule

__all__ = [
    "ACTIVATIONS",
    "Candidate",
    "ProxyError",
    "SEModule",
    "_HardSigmoid",
    "_HardSwish",
    "_features",
    "_forward_seen_by",
    "_linearised",
    "_loss_backward",
    "_meco",
    "_min_correlation_eigenvalue",
    "_twice_differentiable",
    "activations",
    "finite",
    "fisher",
    "grad_norm",
    "grasp",
    "jacob_cov",
    "macs",
    "meco",
    "meco_opt",
    "naswot",
    "params",
    "register_proxy",
    "snip",
    "swap",
    "synflow",
    "weight_grads",
    "weight_layers",
    "zen",
    "zico",
]
