"""Fine-tuning data readers on small files in the real formats: GLUE TSVs (every task's layout),
TFDS glue/<task> (mock data), user TSV/CSV tables and CoNLL files, and their one-line errors."""

import numpy as np
import pytest

from electra_tf import io
from electra_tf.cli import UserError
from electra_tf.finetune import glue, metrics, tasks
from electra_tf.finetune.options import FinetuneOptions
from electra_tf.finetune.registry import get_task
from electra_tf.tokenization import Tokenizer
from tests.electra_tf.finetune.helpers import VOCAB


def options(**values):
    return FinetuneOptions(**values)


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


# Per GLUE task: train lines, expected train (text_a, text_b, label), test lines, expected test
# (guid, text_a, text_b). Headers and column orders are those of the files GLUE distributes.
GLUE_FILES = {
    "cola": (["gj04\t1\t\tThe sailors rode the breeze clear of the rocks.",
              "gj04\t0\t*\tThe more we study verbs, the crazier they get get."],
             [("The sailors rode the breeze clear of the rocks.", None, "1"),
              ("The more we study verbs, the crazier they get get.", None, "0")],
             ["index\tsentence", "0\tBill whistled past the house."],
             [("0", "Bill whistled past the house.", None)]),
    "sst2": (["sentence\tlabel", 'it \'s a "charming and often affecting journey . \t1'],
             [('it \'s a "charming and often affecting journey . ', None, "1")],
             ["index\tsentence", "7\tuneasy mishmash of styles and genres ."],
             [("7", "uneasy mishmash of styles and genres .", None)]),
    "mrpc": (["\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String",
              "1\t702876\t702977\tAmrozi accused his brother.\tHe accused his brother."],
             [("Amrozi accused his brother.", "He accused his brother.", "1")],
             ["index\t#1 ID\t#2 ID\t#1 String\t#2 String", "3\t1\t2\tPCCW 's chief\tThe chief"],
             [("3", "PCCW 's chief", "The chief")]),
    "stsb": (["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2"
              "\tscore",
              "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\t"
              "An air plane is taking off.\t5.000"],
             [("A plane is taking off.", "An air plane is taking off.", 5.0)],
             ["index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2",
              "4\tmain-news\tx\t2012\t1\tnone\tnone\tA girl is styling.\tA girl is brushing."],
             [("4", "A girl is styling.", "A girl is brushing.")]),
    "qqp": (["id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
             "133273\t213221\t213222\tHow is the life?\tHow is life?\t0",
             "5\t1\t2\ta row with a missing field"],  # QQP's known malformed rows are skipped
            [("How is the life?", "How is life?", "0")],
            ["id\tquestion1\tquestion2", "0\tWhy?\tWhy not?"],
            [("0", "Why?", "Why not?")]),
    "mnli": (["index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse"
              "\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label",
              "0\t31193\t31193n\tgovernment\t( x )\t( y )\t(ROOT x)\t(ROOT y)\tConceptually "
              "cream skimming.\tProduct and geography.\tneutral\tneutral"],
             [("Conceptually cream skimming.", "Product and geography.", "neutral")],
             ["index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse"
              "\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2",
              "9\t1\t1n\tslate\t( a )\t( b )\t(ROOT a)\t(ROOT b)\tHello there.\tHi."],
             [("9", "Hello there.", "Hi.")]),
    "qnli": (["index\tquestion\tsentence\tlabel",
              "0\tWhen?\tIn 1990.\tentailment"],
             [("When?", "In 1990.", "entailment")],
             ["index\tquestion\tsentence", "2\tWho?\tNobody."],
             [("2", "Who?", "Nobody.")]),
    "rte": (["index\tsentence1\tsentence2\tlabel",
             "0\tNo Weapons of Mass Destruction Found.\tWeapons Found.\tnot_entailment"],
            [("No Weapons of Mass Destruction Found.", "Weapons Found.", "not_entailment")],
            ["index\tsentence1\tsentence2", "11\tA cat sat.\tA cat."],
            [("11", "A cat sat.", "A cat.")]),
}


@pytest.mark.parametrize("name", sorted(GLUE_FILES))
def test_glue_tsv(tmp_path, name):
    train_lines, train_expected, test_lines, test_expected = GLUE_FILES[name]
    spec = glue.SPECS[name]
    directory = tmp_path / "glue_data" / spec.directory
    write(directory / "train.tsv", train_lines)
    write(directory / f"{spec.test_splits[0]}.tsv", test_lines)
    # Both the glue_data directory and the task's own directory are accepted.
    for data_dir in (tmp_path / "glue_data", directory):
        task = get_task(name, options(data_dir=str(data_dir)))
        train = task.read("train")
        expected = train_expected
        if spec.double_unordered:  # the reference's double_unordered (MRPC, STS-B)
            expected = [row for a, b, label in train_expected
                        for row in ((a, b, label), (b, a, label))]
        assert [(e.text_a, e.text_b, e.label) for e in train] == expected
        test = task.read(spec.test_splits[0])
        assert [(e.guid, e.text_a, e.text_b) for e in test] == test_expected
        assert all(e.label is None for e in test)
    assert task.kind == ("regression" if name == "stsb" else "classification")
    assert task.default_epochs == (10.0 if name in ("rte", "stsb") else 3.0)


@pytest.mark.parametrize("name", ["mrpc", "stsb", "rte"])
def test_mrpc_and_stsb_train_on_both_orders(tmp_path, name):
    """Each training pair again with A and B swapped, right after it; dev and test as read."""
    train_lines, _, test_lines, _ = GLUE_FILES[name]
    spec = glue.SPECS[name]
    directory = tmp_path / spec.directory
    header, row = train_lines[0], train_lines[1]
    write(directory / "train.tsv", [header, row, row.replace("brother", "sister")
                                    .replace("taking off", "landing")
                                    .replace("Weapons Found", "Nothing Found")])
    write(directory / "dev.tsv", [header, row])
    write(directory / "test.tsv", test_lines)
    task = get_task(name, options(data_dir=str(directory)))
    train = task.read("train")
    if name == "rte":  # not an unordered task: read as it is
        assert len(train) == 2
        return
    assert len(train) == 4
    first, second = [(e.text_a, e.text_b) for e in train[:1]], train[2]
    assert [(e.text_b, e.text_a) for e in train[1:2]] == first
    assert (train[3].text_a, train[3].text_b) == (second.text_b, second.text_a)
    assert train[0].label == train[1].label and train[2].label == train[3].label
    assert len(task.read("dev")) == 1 and len(task.read("test")) == 1
    assert len({e.guid for e in train}) == 4


def test_stsb_regresses_score_over_5_and_reports_the_original_scale(tmp_path):
    train_lines, _, _, _ = GLUE_FILES["stsb"]
    directory = tmp_path / "STS-B"
    header, row = train_lines[0], train_lines[1]
    write(directory / "dev.tsv", [header, row, row.replace("5.000", "2.500"),
                                  row.replace("5.000", "1.000")])
    task = get_task("stsb", options(data_dir=str(directory)))
    examples = task.read("dev")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    features = task.featurize(examples, Tokenizer(str(vocab)), 16)
    arrays = features.arrays
    # Targets divided by 5: 5 -> 1, 2.5 -> 0.5, 1 -> 0.2.
    np.testing.assert_allclose(arrays["label"], [1.0, 0.5, 0.2], rtol=1e-6)
    # Predictions on the model's scale are scored (and written) times 5: 0.9 -> 4.5 etc.
    outputs = {"predictions": np.array([0.9, 0.5, 0.2])}
    scores = task.evaluate(features, outputs)
    assert scores["pearson"] == pytest.approx(metrics.pearson([5, 2.5, 1], [4.5, 2.5, 1.0]))
    rows = task.prediction_rows(features, outputs)[1]
    assert [r[1] for r in rows] == ["4.5", "2.5", "1"]
    assert task.metadata()["label_scale"] == 5.0


def test_glue_recipe_metrics_and_mnli_splits():
    task = get_task("mnli", options())
    assert task.eval_splits == ("dev_matched", "dev_mismatched")
    assert task.test_splits == ("test_matched", "test_mismatched")
    assert get_task("cola", options()).metric_names == ("mcc", "accuracy")
    assert get_task("mrpc", options()).metric_names == ("accuracy", "f1")
    assert get_task("stsb", options()).metric_names == ("pearson", "spearman")


def test_glue_tsv_errors(tmp_path):
    directory = tmp_path / "RTE"
    write(directory / "train.tsv", ["index\tsentence1\tsentence2\tlabel", "0\tA.\tB.\tmaybe"])
    task = get_task("rte", options(data_dir=str(directory)))
    # A label outside GLUE's label set is named with its file and line.
    with pytest.raises(UserError, match=r"train\.tsv:2: label 'maybe'"):
        task.featurize(task.read("train"), None, 16)
    with pytest.raises(UserError, match=r"dev\.tsv: file not found"):
        task.read("dev")
    write(directory / "dev.tsv", ["index\tsentence1\tlabel", "0\tA.\tentailment"])
    with pytest.raises(UserError, match="no column 'sentence2'; the columns are: index, "
                                        "sentence1, label"):
        task.read("dev")


def test_tfds_glue_mock():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=5):
        mnli = get_task("mnli", options())
        dev = mnli.read("dev_matched")
        assert len(dev) == 5 and len(mnli.read("dev_mismatched")) == 5
        assert all(e.label in mnli.labels and e.text_b is not None for e in dev)
        assert all(e.label is None for e in mnli.read("test_mismatched"))
        # TFDS names binary labels by meaning; the task uses GLUE's "0"/"1" either way.
        cola = get_task("cola", options())
        assert {e.label for e in cola.read("train")} <= {"0", "1"}
        assert all(e.text_b is None for e in cola.read("train"))
        stsb = get_task("stsb", options())
        assert all(isinstance(e.label, float) for e in stsb.read("dev"))


def test_classification_tsv_and_csv(tmp_path):
    train = write(tmp_path / "train.tsv", ["id\ttext\tlabel", '1\ta "quoted, text\tpos',
                                           "2\tplain\tneg", "", "3\tmore\tpos"])
    dev = write(tmp_path / "dev.csv", ["label,text", 'neg,"with, comma and ""quotes"""'])
    test = write(tmp_path / "test.csv", ["text", "no label here"])
    task = get_task("classification", options(train_file=train, dev_file=dev,
                                                    test_file=test))
    assert [(e.text_a, e.label) for e in task.read("train")] == [
        ('a "quoted, text', "pos"), ("plain", "neg"), ("more", "pos")]
    assert [(e.text_a, e.label) for e in task.read("dev")] == [
        ('with, comma and "quotes"', "neg")]
    assert [(e.text_a, e.label) for e in task.read("test")] == [("no label here", None)]
    # Labels are discovered from the training file and saved with the model.
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    task.prepare(str(model_dir), do_train=True)
    assert task.labels == ["neg", "pos"]
    io.write_json(str(model_dir / tasks.TASK_FILE), task.metadata())
    again = get_task("classification", options(dev_file=dev))
    again.prepare(str(model_dir), do_train=False)
    assert again.labels == ["neg", "pos"]


def test_regression_pairs(tmp_path):
    train = write(tmp_path / "train.csv", ["a,b,score", "x,y,0.5", "p,q,-2"])
    task = get_task("regression", options(train_file=train, text_column="a",
                                                text_b_column="b", label_column="score"))
    assert [(e.text_a, e.text_b, e.label) for e in task.read("train")] == [
        ("x", "y", 0.5), ("p", "q", -2.0)]
    bad = write(tmp_path / "bad.csv", ["a,b,score", "x,y,high"])
    task = get_task("regression", options(train_file=bad, text_column="a",
                                                text_b_column="b", label_column="score"))
    with pytest.raises(UserError, match=r"bad\.csv:2: label 'high' is not a number"):
        task.read("train")


def test_table_errors(tmp_path):
    train = write(tmp_path / "train.tsv", ["sentence\tlabel", "good\tpos", "bad\tneg"])
    task = get_task("classification", options(train_file=train))
    with pytest.raises(UserError, match=r"train\.tsv: no column 'text' \(--text_column\); "
                                        r"the columns are: sentence, label"):
        task.read("train")

    empty = write(tmp_path / "empty.tsv", ["text\tlabel"])
    task = get_task("classification", options(train_file=empty))
    with pytest.raises(UserError, match=r"empty\.tsv: no examples"):
        task.prepare(str(tmp_path), do_train=True)

    train = write(tmp_path / "t.tsv", ["text\tlabel", "good\tpos", "bad\tneg"])
    dev = write(tmp_path / "d.tsv", ["text\tlabel", "fine\tpos", "meh\tneutral"])
    task = get_task("classification", options(train_file=train, dev_file=dev))
    task.prepare(str(tmp_path), do_train=True)
    with pytest.raises(UserError, match=r"d\.tsv:3: label 'neutral' was never seen in the "
                                        r"training data \(labels: neg, pos\)"):
        task.featurize(task.read("dev"), None, 16)

    ragged = write(tmp_path / "r.tsv", ["text\tlabel", "good\tpos\textra"])
    task = get_task("classification", options(train_file=ragged))
    with pytest.raises(UserError, match=r"r\.tsv:2: 3 fields, but the header has 2"):
        task.read("train")

    with pytest.raises(UserError, match="cannot tell the format"):
        get_task("classification", options(train_file=str(tmp_path / "x.txt"))) \
            .read("train")


def test_unknown_task_lists_valid_ones():
    with pytest.raises(UserError) as error:
        get_task("glue", options())
    message = str(error.value)
    for name in ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte",
                 "classification", "regression", "tagging"):
        assert name in message


CONLL = ["-DOCSTART- -X- -X- O", "", "EU NNP B-NP B-ORG", "rejects VBZ B-VP O",
         "German JJ B-NP B-MISC", "", "Peter NNP B-NP B-PER", "Blackburn NNP I-NP I-PER", ""]


def test_conll(tmp_path):
    train = write(tmp_path / "train.txt", CONLL)
    test = write(tmp_path / "test.txt", ["Peter", "Pan", "", "Hook"])
    task = get_task("tagging", options(train_file=train, test_file=test))
    sentences = task.read("train")
    assert [(s.words, s.tags) for s in sentences] == [
        (("EU", "rejects", "German"), ("B-ORG", "O", "B-MISC")),
        (("Peter", "Blackburn"), ("B-PER", "I-PER"))]
    assert [(s.words, s.tags) for s in task.read("test")] == [(("Peter", "Pan"), None),
                                                              (("Hook",), None)]
    task.prepare(str(tmp_path), do_train=True)
    assert task.labels == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    chunks = get_task("tagging", options(train_file=train, tag_column=2))
    assert chunks.read("train")[0].tags == ("B-NP", "B-VP", "B-NP")


def test_conll_wrong_column_count(tmp_path):
    lines = list(CONLL)
    lines[6] = "Peter NNP B-PER"
    train = write(tmp_path / "train.txt", lines)
    task = get_task("tagging", options(train_file=train))
    with pytest.raises(UserError, match=r"train\.txt:7: 3 columns, but the file's first token "
                                        r"line has 4"):
        task.read("train")
