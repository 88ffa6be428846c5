"""The entry scripts start without TensorFlow's C++ start-up notices (electra_tf/cli.py), and
real errors of that phase still reach stderr."""

import os
import subprocess
import sys

import pytest

from electra_tf import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# As a TensorFlow 2.21 process on a machine without a GPU prints them.
NOTICES = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796225584.799217   31837 port.cc:153] oneDNN custom operations are on. You may see \
slightly different numerical results due to floating-point round-off errors from different \
computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.
I0000 00:00:1796225584.799564   31837 cudart_stub.cc:31] Could not find cuda drivers on your \
machine, GPU will not be used.
I0000 00:00:1796225584.896940   31837 cpu_feature_guard.cc:227] This TensorFlow binary is \
optimized to use available CPU instructions in performance-critical operations.
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other \
operations, rebuild TensorFlow with the appropriate compiler flags.
E0000 00:00:1796225798.050692    2091 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA \
error: Failed call to cuInit: UNKNOWN ERROR (303)
"""
REAL = ("E0000 00:00:1796225798.050692    2091 op_kernel.cc:1830] OP_REQUIRES failed: "
        "out of memory\n"
        "F0000 00:00:1796225798.050692    2091 cuda_platform.cc:52] Check failed: device\n"
        "Traceback (most recent call last):\n")
NOTICE_MARKS = ("absl::InitializeLog", "oneDNN", "cudart_stub", "cpu_feature_guard", "cuInit",
                "To enable the following instructions")


def test_only_the_known_notices_are_dropped():
    assert cli.drop_startup_notices(NOTICES) == ""
    assert cli.drop_startup_notices(NOTICES + REAL + NOTICES) == REAL
    # A cuInit failure other than "no GPU here" is a real error.
    other = ("E0000 00:00:1.0    1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
             "CUDA error: CUDA_ERROR_OUT_OF_MEMORY (2)\n")
    assert cli.drop_startup_notices(other) == other


def test_filtered_stderr_lets_real_errors_through_in_order(capfd):
    with cli.filtered_stderr():
        os.write(2, (NOTICES + "first real line\n" + NOTICES.splitlines()[2] + "\n").encode())
        os.write(2, REAL.encode())
    assert capfd.readouterr().err == "first real line\n" + REAL


@pytest.mark.parametrize("command", [
    ["run_pretraining.py"], ["run_finetuning.py"], ["build_pretraining_dataset.py"],
    ["export_saved_model.py"]])  # convert_checkpoint: test_hf.py's CLI test
def test_entry_scripts_print_no_startup_notices(command):
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "ELECTRA_TF_STARTUP_NOTICES")}
    result = subprocess.run([sys.executable, *command, "--no_such_flag"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: Unknown command line flag 'no_such_flag'"], (
        result.stderr)
    assert not any(mark in result.stdout + result.stderr for mark in NOTICE_MARKS)
