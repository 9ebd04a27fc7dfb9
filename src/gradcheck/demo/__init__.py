"""The reference network and its catalogue of mistakes: the demo subject and a test subject.

Example:
    >>> from gradcheck.demo import check_demo
    >>> check_demo().passed, check_demo(bug="bias_times_4").worst.name
    (True, 'b1')
"""

from ._bugs import BUGS as BUGS
from ._bugs import Bug as Bug
from ._bugs import load_bug as load_bug
from ._check import check_demo as check_demo
from ._network import Network as Network
from ._network import make_network as make_network
from ._network import spirals as spirals

__all__ = ["BUGS", "Bug", "Network", "check_demo", "load_bug", "make_network", "spirals"]
