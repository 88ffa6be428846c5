"""The recipe's extractive question answering (SQuAD 1.1 and 2.0), one task family.

reader.py (official JSON and TFDS -> questions), features.py (sliding windows, in-graph),
model.py (the reference's joint QA head), postprocess.py (beam decoding and no-answer scores),
metrics.py (the official evaluation), task.py (the task kind "span" and the `squad` /
`squadv1` tasks) and serving.py (the exported question/context signature).
"""
