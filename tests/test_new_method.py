"""'Adding a base method' from the README, done exactly as written, to a Table 2 row.

A made-up method lives in its own module outside spbench, registers itself with
``@register_method``, is named in the profile (``method_modules`` and ``methods``), and runs
through the unchanged workflow: train, predict, score and report.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

TINYNET = '''
"""A tiny two-layer superpixel network: the README's example method."""

from torch import nn

from spbench.models import Recipe, SuperpixelOutput, register_method


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1))
        self.head = nn.Conv2d(8, 9, 3, padding=1)

    def forward(self, image):
        z = self.features(image)
        return SuperpixelOutput(self.head(z).softmax(1), z)


@register_method(
    "tinynet",
    recipe=Recipe(lr=1e-3, weight_decay=0.0, batch_size=2, crop=64, val_crop=64),
)
def tinynet(**kwargs):
    """Two convolutions and a 9-way softmax."""
    return TinyNet(**kwargs)
'''


@pytest.mark.slow
def test_a_new_method_reaches_table2(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins/tinynet.py").write_text(textwrap.dedent(TINYNET))
    shutil.copytree(ROOT / ".test/config", tmp_path / "config")
    config = yaml.safe_load((tmp_path / "config/config.yaml").read_text())
    config.update(
        method_modules=["tinynet"],
        methods=["tinynet"],
        references=[],
        ablation={"enabled": False},
        sweep={"enabled": False},
        seeds=[0],  # one run per variant and two scales reach Table 2 as well as more would
    )
    config["predict"]["scales"] = [0.6, 1.0]
    (tmp_path / "config/config.yaml").write_text(yaml.safe_dump(config))
    # the plugin folder first, keeping any PYTHONPATH that selects the spbench under test
    paths = [str(tmp_path / "plugins"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--cores",
        "2",
        "--resources",
        "gpu=1",
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "results/test/report/table2/table2.csv")
    assert set(table["model"]) == {"TINYNET", "TINYNET-LAP"}
    assert set(table["ec"]) == {True, False}


def test_a_module_beside_the_profile_is_listed_checked_and_benchmarked(tmp_path):
    """``spbench methods``, ``check-config`` and ``bench train`` saw built-in methods only:
    ``--module`` and ``--config`` (profile + overlay) import the user's module, found in the
    current folder as Snakemake finds one beside the Snakefile."""
    (tmp_path / "tinynet.py").write_text(textwrap.dedent(TINYNET))
    overlay = tmp_path / "mine.yaml"
    overlay.write_text("method_modules: [tinynet]\nmethods: [tinynet]\n")
    # A launcher outside the folder, as the console script is: the folder is not on sys.path.
    launcher = tmp_path / "bin" / "spbench_cli.py"
    launcher.parent.mkdir()
    launcher.write_text("import sys\nfrom spbench.cli import main\nsys.exit(main())\n")

    def spbench(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(launcher), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "tinynet" not in spbench("methods")
    assert "Two convolutions" in spbench("methods", "--module", "tinynet")
    profile = str(ROOT / ".test/config/config.yaml")
    assert "tinynet" in spbench("methods", "--config", profile, str(overlay))
    assert "valid (1 methods" in spbench("check-config", profile, str(overlay))
    rows = tmp_path / "bench.csv"
    spbench(
        "bench", "train", "--module", "tinynet", "--methods", "tinynet", "--variants", "base",
        "--steps", "2", "--warmup", "0", "--device", "cpu", "--crop", "32", "--out", str(rows),
    )  # fmt: skip
    bench = pd.read_csv(rows, keep_default_na=False)
    assert list(bench["method"]) == ["tinynet"] and list(bench["error"]) == [""]


def test_a_stage_whose_network_differs_names_init_from_previous(tmp_path):
    """Stage 2 of a method whose heads differ between stages died on torch's raw state-dict
    error; the error now says which hook to write."""
    import torch
    from torch import nn

    from spbench.checkpoint import checkpoint_header, save_checkpoint
    from spbench.errors import UserError
    from spbench.models import Recipe, Stage, get_method, register_method, registry
    from spbench.train import _initial_model

    @register_method(
        "two_heads",
        recipe=Recipe(lr=1e-3, weight_decay=0.0, batch_size=2, crop=32, val_crop=32),
        stages=(Stage("stage1", uses_variant=False), Stage("stage2")),
    )
    def two_heads(stage: str = "stage2") -> nn.Module:
        """A network whose head is named after its stage."""
        return nn.ModuleDict({f"head_{stage}": nn.Conv2d(3, 9, 1)})

    try:
        init = tmp_path / "stage1.pt"
        stage1 = two_heads(stage="stage1").state_dict()
        save_checkpoint(init, {**checkpoint_header(), "model": stage1, "stage": "stage1"})
        spec = get_method("two_heads")
        with pytest.raises(UserError, match=r"(?s)head_stage2.*init_from_previous"):
            _initial_model(spec, spec.stages[1], init, torch.device("cpu"))
    finally:
        registry.unregister_method("two_heads")


def _network(kind: str):
    """A network breaking the interface one way (``kind``), or keeping it (``"good"``)."""
    import torch
    from torch import nn

    from spbench.models import SuperpixelOutput

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Conv2d(3, 9, 3, padding=1, stride=4 if kind == "shrink" else 1)

        def forward(self, x: torch.Tensor):
            q = self.head(x) + 1.0  # logits: nothing makes them sum to 1
            if kind == "tensor":
                return q
            return SuperpixelOutput(q.softmax(1) if kind != "logits" else q, x)

    return Net()


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("logits", "not a softmax over its 9 channels"),
        ("shrink", r"is \(1, 9, 16, 16\), not \(1, 9, 64, 64\)"),
        ("tensor", "forward returned Tensor, not a SuperpixelOutput"),
    ],
)
def test_a_network_breaking_the_interface_is_refused_before_training(kind, problem):
    """Logits instead of a softmax trained to NaN at step 1 ("non-finite loss"), a low-resolution
    assignment died in a size mismatch: the contract is checked first, naming the README part."""
    import torch

    from spbench.errors import UserError
    from spbench.train import check_output_contract

    with pytest.raises(UserError, match=rf"'mine': .*{problem}.*Adding a base method"):
        check_output_contract(_network(kind), "mine", torch.device("cpu"))
    check_output_contract(_network("good"), "mine", torch.device("cpu"))
