"""
Serving speed of a distilled tagger, measured in one run on one CPU thread (issue: ship the models):
words per second of

  * the spaCy component (``nlp.pipe`` over raw texts, spacy.blank tokenization included),
  * the same student through the AllenNLP predictor (``predict_batch_json`` over the same tokens),
  * its teacher through the predictor, and optionally a transformer teacher (``--transformer-teacher``),
  * the student with int8 dynamic quantization (``torch.ao.quantization.quantize_dynamic`` of its
    Linear and LSTM layers), with the span F1 it loses on the same sentences.

    python benchmarks/serving_benchmark.py --student S/model.tar.gz --teacher T/model.tar.gz \\
        --data ../shared/data/conll2002/esp.testa [--sentences 500] [--lang es] [--output docs/serving_benchmark.md]
"""
import argparse
import copy
import datetime
import platform
import time

import torch

torch.set_num_threads(1)

import spacy  # noqa: E402
from allennlp.models.archival import load_archive  # noqa: E402
from allennlp.predictors import Predictor  # noqa: E402

import allennlp_structkd  # noqa: E402,F401
from allennlp_structkd.dataset_readers import ConllNerReader  # noqa: E402
from allennlp_structkd.training.metrics import SpanF1  # noqa: E402
from report import emit  # noqa: E402  (benchmarks/report.py)


def timed(fn, repeats=2):
    """Best CPU time of this process (one thread) over ``repeats`` after a warm-up: robust to other load."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def predict_all(predictor, sentences, lang, batch_size=32):
    outputs = []
    for start in range(0, len(sentences), batch_size):
        outputs += predictor.predict_batch_json([{"tokens": ws, "lang": lang} for ws in sentences[start : start + batch_size]])
    return outputs


def parameters(predictor) -> int:
    return sum(p.numel() for p in predictor._model.parameters())


def span_f1(predictor, sentences, gold, lang):
    metric = SpanF1(predictor._model.vocab)
    outputs = predict_all(predictor, sentences, lang)
    metric.add_sequences([o["tags"] for o in outputs], gold)
    return metric.get_metric()["f1-measure-overall"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--transformer-teacher", default=None,
                        help="also a transformer teacher's archive (e.g. fine-tuned multilingual-e5-small), timed on the same sentences")
    parser.add_argument("--data", required=True, help="a CoNLL NER file (IOB2) of held-out sentences")
    parser.add_argument("--lang", default="es")
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    reader = ConllNerReader(strict=False, lang=args.lang)
    instances = list(reader.read(args.data))[: args.sentences]
    sentences = [i["metadata"]["words"] for i in instances]
    gold = [i["tags"].labels for i in instances]
    words = sum(len(s) for s in sentences)
    texts = [" ".join(s) for s in sentences]

    student = Predictor.from_archive(load_archive(args.student), "structkd_tagger")
    teacher = Predictor.from_archive(load_archive(args.teacher), "structkd_tagger")
    nlp = spacy.blank(args.lang)
    nlp.add_pipe("structkd_tagger", config={"model": args.student, "lang": args.lang, "batch_size": 32})

    quantized = copy.deepcopy(student)
    quantized._model = torch.ao.quantization.quantize_dynamic(quantized._model, {torch.nn.Linear, torch.nn.LSTM}, dtype=torch.qint8)

    rows = [
        ("student, spaCy component (nlp.pipe)", timed(lambda: list(nlp.pipe(texts, batch_size=32)))),
        ("student, AllenNLP predictor", timed(lambda: predict_all(student, sentences, args.lang))),
        ("student int8 (dynamic), AllenNLP predictor", timed(lambda: predict_all(quantized, sentences, args.lang))),
        ("teacher, AllenNLP predictor", timed(lambda: predict_all(teacher, sentences, args.lang))),
    ]
    f1 = {"student": span_f1(student, sentences, gold, args.lang), "int8": span_f1(quantized, sentences, gold, args.lang),
          "teacher": span_f1(teacher, sentences, gold, args.lang)}
    teacher_time = rows[-1][1]
    sizes = {"student": parameters(student), "teacher": parameters(teacher)}
    if args.transformer_teacher:
        transformer = Predictor.from_archive(load_archive(args.transformer_teacher), "structkd_tagger")
        rows.append(("transformer teacher, AllenNLP predictor", timed(lambda: predict_all(transformer, sentences, args.lang), repeats=1)))
        f1["transformer teacher"] = span_f1(transformer, sentences, gold, args.lang)
        sizes["transformer teacher"] = parameters(transformer)
    lines = [
        "# Benchmark: serving a distilled tagger",
        "",
        f"Produced by `python benchmarks/serving_benchmark.py --student {args.student} --teacher {args.teacher}"
        f" --data {args.data} --lang {args.lang} --sentences {args.sentences}"
        + (f" --transformer-teacher {args.transformer_teacher}" if args.transformer_teacher else "")
        + f"` on {datetime.date.today().isoformat()},"
        f" {platform.machine()}, torch {torch.__version__}, one CPU thread, batches of 32; {len(sentences)} sentences,"
        f" {words} words; best CPU time of 2 after a warm-up (the transformer: 1 run after a warm-up).",
        "",
        "| path | words/s | vs teacher |",
        "|---|---|---|",
    ]
    for name, seconds in rows:
        lines.append(f"| {name} | {words / seconds:.0f} | {teacher_time / seconds:.2f}x |")
    lines += [
        "",
        f"Span F1 on these sentences: teacher {100 * f1['teacher']:.2f}, student {100 * f1['student']:.2f},"
        f" int8 student {100 * f1['int8']:.2f} (int8 costs {100 * (f1['student'] - f1['int8']):.2f} points)"
        + (f", transformer teacher {100 * f1['transformer teacher']:.2f}" if "transformer teacher" in f1 else "") + ".",
        "",
        "Parameters: " + ", ".join(f"{name} {count:,}" for name, count in sizes.items()) + ".",
        "",
    ]
    if args.transformer_teacher:
        student_time, transformer_time = rows[1][1], rows[-1][1]
        lines += [f"The student (predictor path) is {transformer_time / student_time:.1f}x faster than the transformer teacher"
                  f" and {sizes['transformer teacher'] / sizes['student']:.1f}x smaller.", ""]
    text = "\n".join(lines)
    emit(text, args.output)


if __name__ == "__main__":
    main()
