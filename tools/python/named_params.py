"""Parameters kept under their checkpoint names, for the plain-PyTorch
reference models (gla_reference.py, rwkv7_reference.py)."""
from torch import nn


class NamedParams(nn.Module):
    """A module whose parameters are a dict keyed by checkpoint name.
    `nn.ParameterDict` keys may not contain dots, so they are stored as `__`."""

    def set_params(self, p):
        self.params = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v) for k, v in p.items()})

    def w(self, name):
        return self.params[name.replace(".", "__")]

    def checkpoint_state_dict(self):
        """The parameters under their checkpoint names, detached."""
        return {k.replace("__", "."): v.detach() for k, v in self.params.items()}
