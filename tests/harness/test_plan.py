"""What a record's key holds must not drift: records made before (by the evaluator that
planned sweeps itself, up to 771a595) resume only while these settings stay as they were."""

from cram_harness.harness.plan import RECORD_VERSION, Sweep, sweep_config
from cram_harness.harness.settings import RunSettings
from cram_harness.protocols import PROTOCOLS
from tests.tiny import make_tiny_model

PAPER_KEY = {"betas": (0.9, 0.9), "dtype": "fp32", "eps": 1e-08, "lr": 0.01, "max_steps": 5000,
             "min_margin": 0.0, "patience": 2000, "record_version": 2, "seed": 0,
             "temperature": 1.0, "weight_decay": 0.01, "weights": "torch.float32"}


def key_settings(protocol: str, restart: int = 0, **settings):
    sweep = Sweep("d", {}, 1, [8], 2, 0, 0.0, 0.99, restart=restart,
                  protocol=PROTOCOLS[protocol])
    return sweep_config(sweep, RunSettings(protocol=protocol, **settings),
                        make_tiny_model("gpt2"))


def test_a_record_key_holds_what_it_held_before():
    assert RECORD_VERSION == 2
    config, key = key_settings("paper")
    assert key == PAPER_KEY
    assert key_settings("fast")[1] == {**PAPER_KEY, "protocol": "fast"}  # never mixed
    # memory levers share records; the user's settings and a restart's seed do not
    assert key_settings("paper", checkpointing=True)[1] == PAPER_KEY
    assert key_settings("paper", lr=0.3, subspace=8)[1] == {**PAPER_KEY, "lr": 0.3,
                                                             "subspace": 8}
    restarted, key = key_settings("paper", restart=2, seed=5)
    assert restarted.seed == key["seed"] == 7
