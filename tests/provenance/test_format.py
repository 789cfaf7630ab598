"""The build's compiled packing and counting against their naive definitions."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from redraft.provenance import format as fmt
from tests.provenance.oracle import naive_sa


@pytest.mark.parametrize("bits", [1, 7, 8, 27, 31, 32])
@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000])
def test_packed_entries_are_the_values_bit_by_bit(tmp_path, bits, n):
    values = np.random.default_rng(bits * n).integers(0, 2**bits, n, dtype=np.uint64)
    words = fmt.pack_bits(values, bits)
    assert words.size == fmt.sa_words(n, bits)
    stream = "".join(format(int(w), "032b")[::-1] for w in words)  # bit i of the stream, LSB first
    assert [int(stream[i * bits : (i + 1) * bits][::-1], 2) for i in range(n)] == values.tolist()
    assert stream[n * bits :] == "0" * (len(stream) - n * bits)
    # Written chunk by chunk (several chunks here), the file is the same stream with its hash.
    info = fmt.write_packed(values, bits, tmp_path / "sa.bin", chunk=64)
    assert (tmp_path / "sa.bin").read_bytes() == words.tobytes()
    assert info == fmt.file_info(tmp_path / "sa.bin")


@pytest.mark.parametrize(("dtype", "separator"), [("u8", 255), ("u8", 4), ("u16", 300)])
def test_prefix_table_and_token_counts_equal_counting_the_sorted_suffixes(dtype, separator):
    rng = np.random.default_rng(separator)
    tokens = rng.integers(0, separator + 1, 400).astype(fmt.NUMPY_DTYPES[dtype])
    keys = fmt.key_counts(tokens, dtype, separator)
    table = fmt.prefix_table(keys)
    pairs = fmt.prefix_width(dtype) == 2
    t = tokens.tolist()

    def key(p: int) -> int:  # the definition: (first, second + 1) with second -1 past the end
        return t[p] * (separator + 2) + ((t[p + 1] if p + 1 < len(t) else -1) + 1) if pairs else t[p]

    # Suffixes sort by key: the suffixes of key k are exactly the ranks [table[k], table[k + 1]).
    for rank, p in enumerate(naive_sa(t)):
        assert table[key(p)] <= rank < table[key(p) + 1]
    assert table[-1] == len(t) and table.size == fmt.prefix_entries(dtype, separator)
    counts = Counter(t)
    assert fmt.token_counts(keys, dtype, separator).tolist() == [counts[i] for i in range(separator + 1)]


def test_with_nowhere_to_cache_the_kernels_compile_in_each_process():
    """numba refuses ``cache=True`` when no cache location is writable (a read-only install and
    home): the kernels must still load and answer, compiled per process."""
    probe = (
        "from numba.core.caching import CacheImpl\n"
        "CacheImpl._locator_classes = []  # as if no cache location were writable\n"
        "import numpy as np\n"
        "from redraft.provenance import format as fmt, kernel\n"
        "assert type(kernel.pack_into._cache).__name__ == 'NullCache'  # compiled, not cached\n"
        "print(fmt.unpack_bits(fmt.pack_bits(np.arange(40), 6), 6, 40).tolist() == list(range(40)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"
