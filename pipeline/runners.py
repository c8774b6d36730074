"""Runner choice: the Beam PipelineOptions for each supported runner, and a DaskRunner that
runs news-ingest's batch graph correctly.

Beam 2.77's ``DaskRunner`` translates a pipeline into dask bags, but (checked on a real
dask.distributed cluster) it

* computes only the bag of the *last* transform visited, so of three independent sinks only one
  runs and the other two tables are silently never written;
* keys bags by producing transform, not by PCollection, so every consumer of a multi-output
  ``ParDo`` (``with_outputs``, ``with_exception_handling``) receives *all* of its outputs: dead
  letters flow on as articles;
* drops what ``finish_bundle`` emits, and reports no metrics.

``NewsIngestDaskRunner`` keeps Beam's translation of ``Create`` and ``Flatten``, bounds the
partitions of every ``GroupByKey`` (Beam's kept its input's count, which the graph's Flattens
add up: 13,014 dask tasks for 5 documents), and replaces the two broken parts: bags are keyed
by PCollection (each output of a ``ParDo`` filtered by its tag), every PCollection that nothing
consumes is computed (as a count, so no data travels to the launcher), bundles keep what
``finish_bundle`` emits, and counters are collected per bundle and merged on the launcher.
State and timers remain unsupported, as in Beam's runner; the batch graph does not use them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from apache_beam import pvalue
from apache_beam.metrics.execution import MetricsContainer
from apache_beam.options.pipeline_options import (
    _FLAG_THAT_SETS_FALSE_VALUE,
    PipelineOptions,
)
from apache_beam.pipeline import PipelineVisitor
from apache_beam.runners.common import (
    DoFnContext,
    DoFnInvoker,
    DoFnSignature,
    Receiver,
    _OutputHandler,
)
from apache_beam.runners.dask.dask_runner import DaskOptions, DaskRunner
from apache_beam.runners.dask.overrides import _GroupByKeyOnly, dask_overrides
from apache_beam.runners.dask.transform_evaluator import (
    TRANSLATIONS,
    DaskBagOp,
    DaskBagWindowedIterator,
    Flatten,
    NoOp,
    defenestrate,
    get_windowed_value,
)
from apache_beam.runners.direct.direct_metrics import DirectMetrics
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.runners.worker import statesampler
from apache_beam.transforms import core
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.utils import counters
from news_ingest.pipeline.options import NewsIngestRunnerOptions

_LOG = logging.getLogger(__name__)

BEAM_RUNNERS = {
    "direct": "DirectRunner",
    "dask": "news_ingest.pipeline.runners.NewsIngestDaskRunner",
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
}

# Tag under which a bundle reports its counters (never a user tag: it is not a str).
_METRICS = ("news-ingest", "metrics")


def option_flags(options: dict[str, Any]) -> list[str]:
    """Beam command-line flags for a mapping of option names to values (from YAML).

    ``True`` becomes a bare ``--flag``; ``False`` becomes Beam's negative flag where it has one
    (``save_main_session: false`` -> ``--no_save_main_session``: Dataflow would otherwise turn it
    on) and is left out elsewhere, as is ``None``; a list repeats the flag.
    """
    flags: list[str] = []
    for name, value in options.items():
        if value is False and name in _FLAG_THAT_SETS_FALSE_VALUE:
            flags.append(f"--{_FLAG_THAT_SETS_FALSE_VALUE[name]}")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(f"--{name}")
        elif isinstance(value, (list, tuple)):
            flags += [f"--{name}={item}" for item in value]
        else:
            flags.append(f"--{name}={value}")
    return flags


def pipeline_options(
    runner: str,
    workers: int,
    beam_args: list[str],
    options: dict[str, Any] | None = None,
) -> PipelineOptions:
    """Options for ``runner`` with ``workers`` worker processes, plus free-form Beam flags.

    Args:
        runner: ``direct``, ``dask``, ``dataflow`` or ``flink``.
        workers: local worker processes (direct, local dask); the initial worker count on
            Dataflow and the parallelism on Flink unless ``options`` set them.
        beam_args: Beam flags from the command line; they win over ``options``.
        options: Beam options from the config file (``runner.options``).

    The local runner is named explicitly (``DirectRunner``): Beam's default may try to download
    a Prism binary at start-up, which on a closed network only wastes time.
    """
    if runner not in BEAM_RUNNERS:
        raise ValueError(f"runner {runner!r} is not available; one of {sorted(BEAM_RUNNERS)}")
    flags = option_flags(options or {}) + list(beam_args)
    given = {f.split("=", 1)[0].lstrip("-") for f in flags if f.startswith("--")}
    defaults: dict[str, Any] = {"runner": BEAM_RUNNERS[runner]}
    if runner == "direct":
        defaults["direct_num_workers"] = workers
        defaults["direct_running_mode"] = "in_memory" if workers == 1 else "multi_processing"
        if workers > 1:
            # The worker processes log at INFO by default; follow the CLI's verbosity instead.
            verbose = logging.getLogger("apache_beam").isEnabledFor(logging.INFO)
            defaults["default_sdk_harness_log_level"] = "INFO" if verbose else "ERROR"
    elif runner == "dask":
        defaults["dask_local_workers"] = workers
    elif runner == "dataflow":
        defaults["num_workers"] = workers
    elif runner == "flink":
        defaults["parallelism"] = workers
    kwargs = {k: v for k, v in defaults.items() if k not in given}
    return PipelineOptions(flags, **kwargs)


# Set for the DirectRunner's worker processes (news_ingest.pipeline.worker) when the launcher is not verbose.
# Read by news_ingest.pipeline.worker: whether to log errors only, and the pid of the launcher.
QUIET_WORKERS = "NEWS_INGEST_QUIET_WORKERS"
LAUNCHER_PID = "NEWS_INGEST_LAUNCHER_PID"


@contextlib.contextmanager
def worker_processes(runner: str, options: PipelineOptions) -> Iterator[None]:
    """While a DirectRunner job with worker processes starts, have it start ``news_ingest.pipeline.worker``.

    Beam 2.77 starts each worker as ``<sys.executable> -m apache_beam...sdk_worker_main`` and has
    no option to change that command. Run through ``news_ingest.pipeline.worker``, a worker is killed by the
    kernel when the launcher dies (even by SIGKILL) and logs only errors unless the launcher is
    verbose (Beam's own worker logs at INFO before it reads any option).
    """
    from apache_beam.options.pipeline_options import DirectOptions

    direct = options.view_as(DirectOptions)
    if runner != "direct" or direct.direct_running_mode != "multi_processing":
        yield
        return
    executable = sys.executable
    quiet = not logging.getLogger("apache_beam").isEnabledFor(logging.INFO)
    saved = {name: os.environ.get(name) for name in (QUIET_WORKERS, LAUNCHER_PID)}
    os.environ[QUIET_WORKERS] = "1" if quiet else "0"
    os.environ[LAUNCHER_PID] = str(os.getpid())
    # The command is a shell command line: "... exec <python> -m news_ingest.pipeline.worker -m apache_beam".
    # With exec the shell becomes the worker, so the worker's parent is the launcher. SIGINT is
    # ignored from before Python starts (an ignored signal stays ignored across exec): a
    # terminal's Ctrl-C reaches the whole process group, and the launcher alone ends the run.
    sys.executable = f"trap '' INT; exec {shlex.quote(executable)} -m news_ingest.pipeline.worker"
    try:
        yield
    finally:
        sys.executable = executable
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def launch_hint(exc: BaseException) -> str:
    """One line saying why a remote runner did not start a job, and what to do about it."""
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if isinstance(exc, ImportError):
        return f"{text} (install the runner's extra, e.g. apache-beam[gcp]==<beam version>)"
    if "job_server" in text or "jar" in text.lower():
        return f"{text} (give --flink_master of a running Flink, or --flink_job_server_jar)"
    return text or type(exc).__name__


def is_local(runner: str, options: PipelineOptions) -> bool:
    """Whether the workers run on this machine (the DirectRunner, or Dask's local cluster)."""
    if runner == "direct":
        return True
    if runner == "dask":
        dask = options.view_as(DaskOptions)
        return not dask.address and not dask.scheduler_file
    return False


# --- Dask -------------------------------------------------------------------------------------


class _Outputs(dict):
    """Receivers by tag that collect ``(tag, value)`` pairs of one bundle."""

    def __init__(self) -> None:
        super().__init__()
        self.collected: list[tuple[Any, Any]] = []

    def __missing__(self, tag: Any) -> Receiver:
        receiver = self[tag] = _TagReceiver(tag, self.collected)
        return receiver


class _TagReceiver(Receiver):
    def __init__(self, tag: Any, values: list[tuple[Any, Any]]):
        self.tag = tag
        self.values = values

    def receive(self, windowed_value: Any) -> None:
        # Values leave a bundle without their window, as in Beam's DaskRunner: the bag ops it
        # provides (GroupByKey, Flatten) expect bare values; batch runs use the global window.
        self.values.append((self.tag, windowed_value.value))


@dataclasses.dataclass
class _Bundle:
    """What a dask task needs to run one DoFn over one partition (pickled into the graph)."""

    fn: Any
    label: str
    window_fn: Any
    args: list[Any]
    kwargs: dict[str, Any]
    side_inputs: Any

    def __call__(self, items: Iterable[Any]) -> list[tuple[Any, Any]]:
        outputs = _Outputs()
        handler = _OutputHandler(
            window_fn=self.window_fn,
            main_receivers=outputs[None],
            tagged_receivers=outputs,
            per_element_output_counter=None,
            output_batch_converter=None,
            process_yields_batches=False,
            process_batch_yields_elements=False,
        )
        invoker = DoFnInvoker.create_invoker(
            DoFnSignature(self.fn),
            handler,
            context=DoFnContext(self.label, state=None),
            side_inputs=self.side_inputs,
            input_args=self.args,
            input_kwargs=self.kwargs,
            user_state_context=None,
            bundle_finalizer_param=core.DoFn.BundleFinalizerParam(),
        )
        # Counters are thread-local to the state sampler's current state; give the bundle one.
        sampler = statesampler.StateSampler("", counters.CounterFactory())
        statesampler.set_current_tracker(sampler)
        container = MetricsContainer(self.label)
        try:
            with sampler.scoped_state(self.label, "process", metrics_container=container):
                invoker.invoke_setup()
                try:
                    invoker.invoke_start_bundle()
                    for item in items:
                        invoker.invoke_process(get_windowed_value(item, self.window_fn))
                    invoker.invoke_finish_bundle()
                finally:
                    invoker.invoke_teardown()
        finally:
            statesampler.set_current_tracker(None)
        outputs.collected.append((_METRICS, container.get_cumulative().counters))
        return outputs.collected


class _TaggedParDo(DaskBagOp):
    """A ParDo whose bag holds ``(tag, value)`` pairs, one partition per bundle."""

    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        transform = self.transform
        args, kwargs = transform.raw_side_inputs
        main_input = next(iter(self.applied.main_inputs.values()))
        window_fn = main_input.windowing.windowfn if hasattr(main_input, "windowing") else None
        bundle = _Bundle(transform.fn, transform.label, window_fn, list(args), kwargs, side_inputs)
        return input_bag.map_partitions(bundle)


def _key(item: tuple[Any, Any]) -> Any:
    return item[0]


def _grouped(item: tuple[Any, Iterable[Any]]) -> tuple[Any, list[Any]]:
    key, values = item
    return key, [defenestrate(value) for _, value in values]


@dataclasses.dataclass
class _GroupByKey(DaskBagOp):
    """Beam's GroupByKey as a dask groupby into at most ``partitions`` partitions.

    Beam's translation groups into as many partitions as its input has, and a Flatten's
    partitions are the sum of its inputs': through the batch graph's Flattens and 16 groupings
    a run of 5 seeds became 13,014 tasks (4.6 MB of pickled graph), most of a 25 s run spent
    by the scheduler. A grouping's input is first merged into at most ``partitions``
    partitions (twice the cluster's worker threads).
    """

    partitions: int = 1

    def apply(self, input_bag: Any, side_inputs: Any = None) -> Any:
        if input_bag.npartitions > self.partitions:
            # dask's task shuffle keeps its input's partition count (it ignores npartitions=)
            input_bag = input_bag.repartition(npartitions=self.partitions)
        return input_bag.groupby(_key).map(_grouped)


def _tagged(pairs: Iterable[tuple[Any, Any]], tag: Any) -> list[Any]:
    """The values of one output of a bundle, as a list."""
    return [value for got, value in pairs if got == tag]


def _concrete(partition: Iterable[Any]) -> list[Any]:
    """A partition as a list, whatever dask's optimizer left of it."""
    return list(partition)


@dataclasses.dataclass
class _DaskGraph(PipelineVisitor):
    """Bags of every PCollection of a pipeline, built by visiting its leaf transforms."""

    bags: dict[Any, Any] = dataclasses.field(default_factory=dict)
    consumed: set[Any] = dataclasses.field(default_factory=set)
    metrics: list[Any] = dataclasses.field(default_factory=list)
    bag_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    # Most partitions a grouping's input is merged into (and so its output has).
    shuffle_partitions: int = 1

    def visit_transform(self, node: Any) -> None:
        op_class: Any = TRANSLATIONS.get(node.transform.__class__, NoOp)
        if op_class is TRANSLATIONS[core.ParDo]:
            op_class = _TaggedParDo
        if op_class is TRANSLATIONS[_GroupByKeyOnly]:
            op = _GroupByKey(node, bag_kwargs=self.bag_kwargs, partitions=self.shuffle_partitions)
        else:
            op = op_class(node, bag_kwargs=self.bag_kwargs)
        inputs: list[Any] = []
        for value in node.inputs:
            if isinstance(value, pvalue.PBegin):
                inputs.append(None)
            else:
                self.consumed.add(value)
                inputs.append(self.bags[value])
        side_inputs = []
        for si in node.side_inputs:
            self.consumed.add(si.pvalue)
            iterator = DaskBagWindowedIterator(self.bags[si.pvalue], si._window_mapping_fn)
            view = SideInputMap(type(si), si._view_options(), iterator)  # type: ignore[arg-type]
            side_inputs.append(view)
        if isinstance(op, Flatten):
            bag = op.apply(input_bag=inputs, side_inputs=side_inputs or None)
        else:
            bag = op.apply(input_bag=inputs[0] if inputs else None, side_inputs=side_inputs or None)
        # Every PCollection's partitions must be lists, never one-shot iterators: several
        # transforms may read one partition, and dask.bag's optimizer strips the ``reify`` of
        # every task it fuses into a chain except the chain's last one. A Flatten (``concat``)
        # only aliases its inputs' partitions, so when it ends a chain the partition it hands
        # on is a lazy ``map``/``filter`` iterator: the first consumer drains it and the
        # others see an empty partition (silent data loss). Our own partition functions are
        # never stripped, so each PCollection's partition is built as a list by one of them.
        for tag, pcoll in node.outputs.items():
            if not isinstance(pcoll, pvalue.PCollection):
                continue
            if isinstance(op, _TaggedParDo):
                # The main output is keyed None here and in the bundle's receivers.
                self.bags[pcoll] = bag.map_partitions(_tagged, tag)
            else:
                self.bags[pcoll] = bag.map_partitions(_concrete)
        if isinstance(op, _TaggedParDo):
            self.metrics.append(bag.map_partitions(_tagged, _METRICS))

    def terminals(self) -> list[Any]:
        """A count of each PCollection nothing consumes: computing these runs the whole graph."""
        return [bag.count() for pcoll, bag in self.bags.items() if pcoll not in self.consumed]


class DaskRunResult(PipelineResult):
    """The result of a run on Dask: waits for every sink, then merges the bundles' counters."""

    def __init__(self, client: Any, futures: list[Any], metric_futures: list[Any], stop: Any):
        super().__init__(PipelineState.RUNNING)
        self.client = client
        self.futures = futures
        self.metric_futures = metric_futures
        self._stop = stop
        self._metrics = DirectMetrics()

    def wait_until_finish(self, duration: int | None = None) -> str:
        import dask.distributed as ddist

        if self._state in (PipelineState.DONE, PipelineState.FAILED):
            return self._state
        timeout = duration / 1000 if duration is not None else None
        try:
            ddist.wait(self.futures + self.metric_futures, timeout=timeout)
        except ddist.TimeoutError:
            return self._state  # still running: the caller may wait again
        try:
            # Gathering raises a worker's exception here rather than leaving it on the cluster.
            for _future in ddist.as_completed(self.futures, with_results=True):
                pass
            for updates in self.client.gather(self.metric_futures):
                for bundle_counters in updates:
                    self._metrics.commit_logical(None, _Updates(bundle_counters))
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self._stop.close()
        return self._state

    def cancel(self) -> str:
        self.client.cancel(self.futures + self.metric_futures)
        self._stop.close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> DirectMetrics:
        return self._metrics


@dataclasses.dataclass
class _Updates:
    """Counter updates of one bundle in the shape ``DirectMetrics`` commits."""

    counters: dict[Any, int]
    distributions: dict[Any, Any] = dataclasses.field(default_factory=dict)
    gauges: dict[Any, Any] = dataclasses.field(default_factory=dict)
    string_sets: dict[Any, Any] = dataclasses.field(default_factory=dict)
    bounded_tries: dict[Any, Any] = dataclasses.field(default_factory=dict)
    histograms: dict[Any, Any] = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def local_cluster(workers: int, threads_per_worker: int = 1) -> Iterator[str]:
    """A dask.distributed cluster of ``workers`` processes on 127.0.0.1; yields its address.

    Its processes log at the launcher's level for Beam (ERROR unless -v): dask's own default,
    INFO, put ~70 lines on stderr per run.
    """
    import dask
    from dask.distributed import LocalCluster

    level = logging.getLogger("apache_beam").getEffectiveLevel()
    # The worker processes set their logging up when they import distributed, from dask's
    # config, which they read from the environment they inherit.
    env = {"DASK_LOGGING__DISTRIBUTED": logging.getLevelName(level).lower()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        with dask.config.set({"logging.distributed": env["DASK_LOGGING__DISTRIBUTED"]}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=level,
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


class NewsIngestDaskRunner(DaskRunner):
    """Beam's DaskRunner with every sink computed, tagged outputs kept apart, ``finish_bundle``
    output kept and counters reported (see the module docstring).

    With ``--dask_client_address`` it submits to that scheduler; without, it starts a local
    cluster of ``--dask_local_workers`` processes on 127.0.0.1 and shuts it down after the run.
    """

    def run_pipeline(self, pipeline: Any, options: PipelineOptions) -> DaskRunResult:
        import dask.distributed as ddist

        # dask configures its loggers at INFO on import; follow the CLI's verbosity for the
        # libraries instead (ERROR unless -v).
        level = logging.getLogger("apache_beam").getEffectiveLevel()
        logging.getLogger("distributed").setLevel(level)
        dask_options = options.view_as(DaskOptions).get_all_options(
            drop_default=True, current_only=True
        )
        bag_kwargs = DaskOptions._extract_bag_kwargs(dask_options)
        ours = options.view_as(NewsIngestRunnerOptions)
        stack = contextlib.ExitStack()
        try:
            if not dask_options.get("address") and not dask_options.get("scheduler_file"):
                workers = ours.dask_local_workers or 1
                address = stack.enter_context(local_cluster(workers, ours.dask_threads_per_worker))
                dask_options["address"] = address
                _LOG.info("started a local Dask cluster of %d workers at %s", workers, address)
            client = stack.enter_context(ddist.Client(**dask_options))
            pipeline.replace_all(dask_overrides())
            threads = sum(client.nthreads().values())
            graph = _DaskGraph(bag_kwargs=bag_kwargs, shuffle_partitions=max(2 * threads, 1))
            pipeline.visit(graph)
            terminals = graph.terminals()
            # One compute call, so the tasks the sinks and the counters share run once.
            submitted = client.compute([*terminals, *graph.metrics])
            futures, metric_futures = submitted[: len(terminals)], submitted[len(terminals) :]
        except BaseException:
            stack.close()
            raise
        return DaskRunResult(client, futures, metric_futures, stack)
