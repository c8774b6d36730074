"""The cached state/timer spec lookup answers what Beam's own lookup answers, per DoFn kind."""

import gc
import weakref

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import core, userstate
from news_ingest.transforms import beam_patches
from news_ingest.transforms.stream.dedup import _SeenFilter

_COUNT = userstate.ReadModifyWriteStateSpec("count", beam.coders.VarIntCoder())
_COUNT_PARAM = beam.DoFn.StateParam(_COUNT)


def _names(specs):
    states, timers = specs
    return sorted(s.name for s in states), sorted(t.name for t in timers)


def test_importing_the_transforms_installs_the_cached_lookup():
    assert userstate.get_dofn_specs is beam_patches.cached_dofn_specs


def test_a_stateful_dofn_gets_the_specs_beam_finds_and_a_repeat_is_cached():
    dofn = _SeenFilter(3600)
    uncached = _names(beam_patches._UNCACHED(dofn))
    assert uncached == (["seen"], ["ts-expire"])
    assert _names(beam_patches.cached_dofn_specs(dofn)) == uncached
    assert type(dofn) in beam_patches._by_class
    assert _names(beam_patches.cached_dofn_specs(_SeenFilter(60))) == uncached
    # The caller gets its own sets: changing them leaves the cache as it was.
    beam_patches.cached_dofn_specs(dofn)[0].clear()
    assert _names(beam_patches.cached_dofn_specs(dofn)) == uncached


def test_wrapped_callables_get_what_beam_finds_and_are_not_kept_alive():
    def stateless(x):
        return x

    def stateful(kv, count=_COUNT_PARAM):
        return kv

    plain = core.CallableWrapperDoFn(stateless)
    with_state = core.CallableWrapperDoFn(stateful)
    for dofn in (plain, with_state, plain):
        assert _names(beam_patches.cached_dofn_specs(dofn)) == _names(beam_patches._UNCACHED(dofn))
    table = beam_patches._by_callable[core.CallableWrapperDoFn]
    assert stateful in table
    gone = weakref.ref(stateful)
    del with_state, stateful
    gc.collect()
    assert gone() is None  # the cache did not keep the callable alive


def test_a_dofn_with_methods_on_the_instance_is_looked_up_each_time():
    class Odd(beam.DoFn):
        def process(self, x):
            yield x

    dofn = Odd()

    def process(x, count=_COUNT_PARAM):
        yield x

    dofn.process = process.__get__(dofn)
    assert _names(beam_patches.cached_dofn_specs(dofn)) == (["count"], [])
    assert Odd not in beam_patches._by_class


def test_a_stateful_pipeline_still_keeps_its_state_per_key():
    class CountPerKey(beam.DoFn):
        def process(self, kv, count=_COUNT_PARAM):
            n = (count.read() or 0) + 1
            count.write(n)
            yield kv[0], n

    with beam.Pipeline() as p:
        counted = (
            p
            | beam.Create([("a", 1), ("b", 1), ("a", 2), ("a", 3)])
            | beam.ParDo(CountPerKey())
            | beam.CombinePerKey(max)
        )
        assert_that(counted, equal_to([("a", 3), ("b", 1)]))


class _Double(beam.DoFn):
    def process(self, x):
        yield 2 * x


def test_a_subprocess_dofn_teardown_leaves_no_child_alive():
    assert core._SubprocessDoFn._terminate_pool is beam_patches.terminate_pool
    dofn = core._SubprocessDoFn(_Double())
    dofn.setup()
    dofn.start_bundle()
    assert list(dofn.process(21)) == [42]  # run in the pool's child
    children = list(dofn._pool._processes.values())
    assert children and all(child.is_alive() for child in children)
    dofn.finish_bundle()
    dofn.teardown()
    assert dofn._pool is None
    assert not any(child.is_alive() for child in children)
    dofn.teardown()  # again: nothing to end


def test_a_pipeline_with_subprocess_isolation_still_gives_every_output():
    with beam.Pipeline() as p:
        good, bad = (
            p
            | beam.Create([1, 2, 3])
            | beam.ParDo(_Double()).with_exception_handling(use_subprocess=True)
        )
        assert_that(good, equal_to([2, 4, 6]), label="Good")
        assert_that(bad, equal_to([]), label="Bad")
