"""Start-up: plugins are imported when their device type is first used, not at import."""
import subprocess
import sys

SCRIPT = """
import sys
import numpy as np
import numlazy as nl
assert "numlazy_cpu" not in sys.modules and "numlazy_cuda" not in sys.modules, "at import"
assert "cuda" in nl.list_backends() and "numlazy_cuda" not in sys.modules, "listing"
y = nl.asarray(np.ones(3)) * 2
assert float(nl.sum(y)) == 6.0
assert "numlazy_cpu" in sys.modules and "numlazy_cuda" not in sys.modules, "a cpu step"
print("ok")
"""


def test_plugins_load_when_their_device_is_first_used():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_a_broken_plugin_warns_when_used_and_is_skipped(monkeypatch):
    import pytest
    from numlazy import registry
    from numlazy.device import Device

    class Broken:
        name, value = "broken", "no_such_module:Backend"

        def load(self):
            raise ImportError("no module named no_such_module")

    registry._discover()
    monkeypatch.setitem(registry._factories, "broken", registry._Plugin(Broken()))
    with pytest.warns(RuntimeWarning, match="'broken'.*failed to load and is skipped"):
        with pytest.raises(ValueError, match="unknown device type 'broken'"):
            registry.backend_for(Device("broken"))
    assert "broken" not in registry.list_backends()
