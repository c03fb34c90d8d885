"""The passes a seed's rows share (core/pass_cache.py): a cached pass is the pass, bit for bit; another network,
other images or another thread count never read it; the loop's first epoch reads it and trains the same."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from reid_uda_lib.core import pass_cache as pc
from reid_uda_lib.core.bn_stats import refresh_bn_stats
from reid_uda_lib.core.features import extract_features
from reid_uda_lib.core.pass_cache import PassCache, state_digest
from reid_uda_lib.models import build_model
from reid_uda_lib.train import adapt
from uda_helpers import tiny_cfg

CPU = torch.device("cpu")


@pytest.fixture
def net_and_items(tiny_pretrained):
    src, tgt, _ = tiny_pretrained
    cfg = tiny_cfg("sbase")
    torch.manual_seed(0)
    net = build_model(cfg.model, num_classes=src.num_train_pids)
    return net, tgt.train[:40], cfg.data


def test_a_cached_feature_pass_is_the_pass_and_other_weights_never_read_it(net_and_items, tmp_path, monkeypatch):
    net, items, data = net_and_items
    direct = extract_features(net, items, data, CPU, progress=False)
    cache = PassCache(tmp_path / "cache")
    first = cache.features(net, items, data, CPU, progress=False)
    again = cache.features(copy.deepcopy(net), items, data, CPU, progress=False)      # another row, same weights
    assert (cache.misses, cache.hits) == (1, 1)
    assert torch.equal(first, direct) and torch.equal(again, direct)
    assert len(list((tmp_path / "cache").glob("features-*.pt"))) == 1

    other = copy.deepcopy(net)
    with torch.no_grad():
        next(other.parameters()).view(-1)[0] += 1e-3                               # one weight moved
    theirs = cache.features(other, items, data, CPU, progress=False)
    assert (cache.misses, cache.hits) == (2, 1)
    assert torch.equal(theirs, extract_features(other, items, data, CPU, progress=False))
    assert not torch.equal(theirs, direct)
    cache.features(net, items[:30], data, CPU, progress=False)                # other images: another pass
    assert (cache.misses, cache.hits) == (3, 1)

    # mutation: a key without the weights would hand the moved network the first network's features
    monkeypatch.setattr(pc, "state_digest", lambda module: "the same for every network")
    wrong = PassCache(tmp_path / "mutated")
    wrong.features(net, items, data, CPU, progress=False)
    assert not torch.equal(wrong.features(other, items, data, CPU, progress=False),
                           extract_features(other, items, data, CPU, progress=False))


def test_an_image_replaced_at_its_path_is_another_pass(tiny_pretrained, tmp_path):
    import shutil
    from PIL import Image
    src, tgt, _ = tiny_pretrained
    cfg = tiny_cfg("sbase")
    net = build_model(cfg.model, num_classes=src.num_train_pids)
    items = []
    for i, (path, pid, cam) in enumerate(tgt.train[:6]):
        shutil.copy(path, tmp_path / f"{i}.jpg")
        items.append((str(tmp_path / f"{i}.jpg"), pid, cam))
    cache = PassCache(tmp_path / "cache")
    before = cache.features(net, items, cfg.data, CPU, progress=False)
    Image.new("RGB", (32, 64), (250, 0, 0)).save(items[0][0])             # the same path, another image
    after = cache.features(net, items, cfg.data, CPU, progress=False)
    assert (cache.misses, cache.hits) == (2, 0)
    assert not torch.equal(before, after)
    assert torch.equal(after, extract_features(net, items, cfg.data, CPU, progress=False))


def test_the_key_follows_the_thread_count_and_the_memory_layout(net_and_items, tmp_path):
    net, items, data = net_and_items
    # the same weights in channels-last layout round differently in the kernels: another key
    assert state_digest(copy.deepcopy(net).to(memory_format=torch.channels_last)) != state_digest(net)
    threads = torch.get_num_threads()
    key = PassCache(tmp_path).key("features:bn", net, items, data, CPU)
    try:
        torch.set_num_threads(threads % 2 + 1)
        assert PassCache(tmp_path).key("features:bn", net, items, data, CPU) != key
    finally:
        torch.set_num_threads(threads)
    assert PassCache(tmp_path).key("features:bn", net, items, data, CPU) == key


def test_cached_bn_statistics_are_the_passes_statistics(net_and_items, tmp_path):
    net, items, data = net_and_items
    reference = copy.deepcopy(net)
    layers = refresh_bn_stats(reference, items, data, CPU, progress=False)
    cache = PassCache(tmp_path)
    a, b = copy.deepcopy(net), copy.deepcopy(net)
    assert cache.bn_stats(a, items, data, CPU, progress=False) == layers        # computed
    assert cache.bn_stats(b, items, data, CPU, progress=False) == layers        # read
    assert (cache.misses, cache.hits) == (1, 1)
    for x in (a, b):
        assert state_digest(x) == state_digest(reference)       # every buffer and weight, bit for bit
    assert state_digest(net) != state_digest(reference)         # (the pass does change the statistics)


def test_a_damaged_entry_is_computed_again(net_and_items, tmp_path):
    net, items, data = net_and_items
    cache = PassCache(tmp_path)
    cache.features(net, items, data, CPU, progress=False)
    (entry,) = tmp_path.glob("features-*.pt")
    entry.write_bytes(b"cut short")
    again = PassCache(tmp_path)
    assert torch.equal(again.features(net, items, data, CPU, progress=False),
                       extract_features(net, items, data, CPU, progress=False))
    assert (again.misses, again.hits) == (1, 0)
    assert PassCache(tmp_path).features(net, items, data, CPU, progress=False) is not None
    assert not list(tmp_path.glob(".*.tmp"))


def _records(folder):
    return [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("method", ["sbase", "oracle"])
def test_a_second_row_reads_the_first_epochs_passes_and_trains_the_same(tiny_pretrained, tmp_path, capsys, method):
    """Runs from one pretraining: without the cache, with it (empty: it computes and writes the source
    prototypes, the target statistics and the first features), with it again (reads all three). Every epoch's
    record is the same in all of them."""
    src, tgt, init = tiny_pretrained
    cfg = tiny_cfg(method, **{"uda.target_bn": True})
    cache = tmp_path / "pass_cache"
    if method == "sbase":       # the oracle's row: the run that writes stands for the plain one (same passes)
        adapt(cfg, src, tgt, init, tmp_path / "plain", progress=False)
    adapt(cfg, src, tgt, init, tmp_path / "writes", progress=False, pass_cache=cache)
    assert "read from" not in capsys.readouterr().out
    assert len(list(cache.glob("features-*.pt"))) == 2 and len(list(cache.glob("bn-*.pt"))) == 1
    adapt(cfg, src, tgt, init, tmp_path / "reads", progress=False, pass_cache=cache)
    assert f"{method}: 3 of the first epoch's passes read from {cache}" in capsys.readouterr().out
    assert len(list(cache.glob("*.pt"))) == 3                   # later epochs' passes are never stored
    plain = _records(tmp_path / ("plain" if method == "sbase" else "writes"))
    assert len(plain) == 2
    assert _records(tmp_path / "writes") == plain and _records(tmp_path / "reads") == plain
