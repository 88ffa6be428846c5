"""The recipe's extractive question answering (SQuAD 1.1 and 2.0), one task family.

reader.py (official JSON and TFDS -> questions), features.py (sliding windows, in-graph),
postprocess.py (span search and no-answer scores), metrics.py (the official evaluation),
task.py (the span model, the task kind "span" and the `squad` / `squadv1` tasks) and serving.py
(the exported question/context signature).
"""
