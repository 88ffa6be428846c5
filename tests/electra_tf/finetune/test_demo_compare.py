"""`make demo`'s fine-tuning comparison: three runs with one budget, each starting point named
(the runs themselves are replaced here; the runner has its own tests)."""

import json
import os

import pytest

from electra_tf.cli import UserError
from electra_tf.finetune import demo_compare


@pytest.fixture
def parsed(tmp_path):
    pretrained = tmp_path / "pretrain"
    pretrained.mkdir()
    (pretrained / "config.json").write_text("{}")
    demo_compare.FLAGS(["demo_compare", f"--pretrained_dir={pretrained}",
                        f"--output_dir={tmp_path / 'finetune'}",
                        f"--hf_dir={tmp_path / 'minilm'}"])
    yield tmp_path
    demo_compare.FLAGS.unparse_flags()


def test_three_runs_with_one_budget_and_three_named_accuracies(parsed, monkeypatch, capsys):
    seen = []

    def fake(options):
        seen.append(options)
        name = os.path.basename(options.model_dir)
        return {"pretrained": 0.61, "random": 0.71, "minilm": 0.81}[name], 60.0, 200

    monkeypatch.setattr(demo_compare, "settings", lambda model_dir, **v: dict(
        model_dir=model_dir, **demo_compare.DEMO_SETTINGS, **v))
    monkeypatch.setattr(demo_compare, "fine_tune", lambda o: fake(type("O", (), o)))
    demo_compare.main(["demo_compare"])
    starts = [o.init_checkpoint for o in seen]
    assert starts == [str(parsed / "pretrain"), None, str(parsed / "minilm")]
    out = capsys.readouterr().out
    assert "0.6100  from this demo's CPU pre-training" in out
    assert "0.7100  from random initialization" in out
    assert "0.8100  from all-MiniLM-L6-v2" in out and "imported from the HF directory" in out
    comparison = json.loads((parsed / "finetune" / "comparison.json").read_text())
    assert comparison["hf_encoder_dev_accuracy"] == 0.81
    assert comparison["random_init_dev_accuracy"] == 0.71


def test_an_earlier_comparison_is_not_overwritten(parsed):
    (parsed / "finetune" / "minilm").mkdir(parents=True)
    (parsed / "finetune" / "minilm" / "checkpoint").write_text("")
    with pytest.raises(UserError, match="minilm holds a fine-tuned model already"):
        demo_compare.main(["demo_compare"])
