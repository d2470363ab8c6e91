"""Benchmark: understanding typed Thai answers (matching, word counts, counts, phones).

Each volunteer message that is typed rather than pressed passes through these; the figures
say what natural-Thai understanding costs per message.

    python bench/typed_answers_bench.py            # 2,000 rounds of each
"""

import argparse
import statistics
import time
from collections.abc import Callable

from bot.domain.counts import parse_people
from bot.domain.matching import match_many, match_one
from bot.domain.normalize import count_words, find_phone
from bot.domain.province import load_province


def timed(rounds: int, work: Callable[[], object]) -> tuple[float, float]:
    """Return the median and 95th-percentile time of one call, in microseconds."""
    work()
    spans = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        spans.append((time.perf_counter() - start) * 1e6)
    spans.sort()
    return statistics.median(spans), spans[int(len(spans) * 0.95)]


def main() -> None:
    """Print the cost of each step of reading a typed answer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    rounds = parser.parse_args().rounds
    start = time.perf_counter()
    count_words("สวัสดี")
    print(f"first word count (loads the Thai word list): {time.perf_counter() - start:.2f} s")
    districts = {d.code: [d.name_th, d.name_en] for d in load_province("CM").districts}
    agencies = {
        "a": ["พมจ.เชียงใหม่"],
        "b": ["อปท. (อบต./เทศบาล)"],
        "c": ["สาธารณสุข (รพ.สต./โรงพยาบาล)"],
    }
    problem = "ผู้สูงอายุในหมู่บ้านไม่รู้สิทธิเบี้ยยังชีพและไม่มีคนพาไปลงทะเบียน " * 3
    cases = {
        "district by prefix (อ.แม่ริม)": lambda: match_one("อ.แม่ริม", districts),
        "district misspelt (กัลยานิวัฒนา)": lambda: match_one("กัลยานิวัฒนา", districts),
        "several agencies (พมจ. และ อปท.)": lambda: match_many("พมจ. และ อปท.", agencies),
        "word count, 200-character problem": lambda: count_words(problem),
        "count (ประมาณ 30-40 คน)": lambda: parse_people("ประมาณ 30-40 คน"),
        "count in words (สามสิบ)": lambda: parse_people("สามสิบ"),
        "phone in words (โทร 081–234–5678 ค่ะ)": lambda: find_phone("โทร 081–234–5678 ค่ะ"),
    }
    print(f"{'step':<40} {'median µs':>10} {'p95 µs':>10}")
    for name, work in cases.items():
        median, p95 = timed(rounds, work)
        print(f"{name:<40} {median:>10.0f} {p95:>10.0f}")


if __name__ == "__main__":
    main()
