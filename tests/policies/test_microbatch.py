from lobra.policies.microbatch import packed_micro_batches, padded_micro_batches


def test_padded_full_micro_batches_then_remainder_largest_first():
    items = list(range(7))
    lengths = [500, 480, 1000, 990, 1000, 500, 470]
    padded = [512, 512, 1024, 1024, 1024, 512, 512]
    mbs = padded_micro_batches(items, lengths, padded, max_tokens=2048)
    assert [(mb.seq_len, len(mb.items)) for mb in mbs] == [(1024, 2), (1024, 1), (512, 4)]
    assert sorted(i for mb in mbs for i in mb.items) == items
    assert all(mb.tokens <= 2048 for mb in mbs)
    # lengths travel with their items
    assert {i: n for mb in mbs for i, n in zip(mb.items, mb.lengths, strict=True)} == dict(enumerate(lengths))


def test_packed_best_fit_decreasing_never_overflows():
    lengths = [1500, 900, 700, 600, 300, 100, 2000]
    mbs = packed_micro_batches(list(range(7)), lengths, max_tokens=2048)
    assert all(mb.packed and mb.tokens <= 2048 for mb in mbs)
    assert sorted(i for mb in mbs for i in mb.items) == list(range(7))
    assert sum(mb.tokens for mb in mbs) == sum(lengths)  # no padding
    # best fit, longest first: 2000 | 1500 | 900 | 700 joins 900 (room 1148) | 600 fits nowhere: new |
    # 300 and then 100 join 900+700, the fullest bin with room
    assert [sorted(mb.lengths, reverse=True) for mb in mbs] == [[2000], [1500], [900, 700, 300, 100], [600]]
