from pathlib import Path

import pytest

from policies.config import FILTERS, ConfigError, default_profile, load
from policies.framework import Profile
from policies.node_resources_fit import NodeResourcesFit, ScoringStrategy
from policies.topology_spread import PodTopologySpread
from policies.volume_binding import VolumeBinding


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def names(profile: Profile) -> tuple[list[str], list[tuple[str, int]]]:
    return (
        [f.name for f in profile.filters],
        [(s.name, w) for s, w in profile.scores],
    )


def test_profiles_are_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
profiles:
  - schedulerName: spread
    filters: [NodeUnschedulable, TaintToleration, NodeResourcesFit]
    scores:
      - {name: LeastAllocated, weight: 2}
      - {name: TaintToleration, weight: 3}
  - schedulerName: pack
    filters: [NodeResourcesFit]
    scores: [MostAllocated]
""",
    )
    spread, pack = load(path, "ignored")
    assert spread.scheduler_name == "spread"
    assert names(spread) == (
        ["NodeUnschedulable", "TaintToleration", "NodeResourcesFit"],
        [("LeastAllocated", 2), ("TaintToleration", 3)],
    )
    assert pack.scheduler_name == "pack"
    assert names(pack) == (["NodeResourcesFit"], [("MostAllocated", 1)])


def test_a_file_without_profiles_is_one_profile_named_by_default(tmp_path: Path) -> None:
    path = write(tmp_path, "scores:\n  - {name: MostAllocated, weight: 0}\n")
    (profile,) = load(path, "my-scheduler")
    assert profile.scheduler_name == "my-scheduler"
    assert names(profile) == (list(FILTERS), [("MostAllocated", 0)])


def test_an_empty_file_is_the_default_profile(tmp_path: Path) -> None:
    (profile,) = load(write(tmp_path, ""), "my-scheduler")
    assert names(profile) == names(default_profile("my-scheduler"))


def test_preemption_is_on_unless_a_profile_turns_it_off(tmp_path: Path) -> None:
    text = "profiles:\n  - schedulerName: a\n  - {schedulerName: b, preemption: false}\n"
    a, b = load(write(tmp_path, text), "my-scheduler")
    assert (a.preemption, b.preemption) == (True, False)


def test_the_default_profile_filters_with_every_filter() -> None:
    profile = default_profile("x")
    assert profile.scheduler_name == "x"
    assert [f.name for f in profile.filters] == list(FILTERS)
    assert all(weight >= 0 for _, weight in profile.scores)


@pytest.mark.parametrize(
    "text, problem",
    [
        pytest.param("filters: [NodeResourcesFit, Magic]\n", "unknown filter policy 'Magic'", id="an unknown filter"),
        pytest.param("scores: [{name: Magic}]\n", "unknown score policy 'Magic'", id="an unknown score"),
        pytest.param(
            "scores: [{name: LeastAllocated, weight: -1}]\n", "weight must be a whole number", id="a negative weight"
        ),
        pytest.param(
            "scores: [{name: LeastAllocated, weight: 1.5}]\n", "weight must be a whole number", id="a fractional weight"
        ),
        pytest.param(
            "scores: [{name: LeastAllocated, weight: true}]\n", "weight must be a whole number", id="a boolean weight"
        ),
        pytest.param("filters: [NodePorts\n", "invalid YAML", id="broken YAML"),
        pytest.param("a: b: c\n", "invalid YAML at line 1", id="broken YAML says where"),
        pytest.param("filter: [NodePorts]\n", "unknown key(s) ['filter']", id="an unknown key"),
        pytest.param(
            "profiles:\n  - {schedulerName: a, colour: red}\n", "profiles[0]: unknown key", id="an unknown profile key"
        ),
        pytest.param(
            "profiles:\n  - schedulerName: a\n  - schedulerName: a\n",
            "schedulerName must be unique",
            id="a duplicate schedulerName",
        ),
        pytest.param("profiles: []\n", "profiles must be a non-empty list", id="no profiles"),
        pytest.param("- NodePorts\n", "expected a mapping", id="a list at the top level"),
        pytest.param("filters: NodePorts\n", "filters must be a list", id="filters not a list"),
        pytest.param("scores: [{weight: 1}]\n", "each score needs a name", id="a score without a name"),
        pytest.param("schedulerName: ''\n", "schedulerName must be a non-empty string", id="an empty schedulerName"),
        pytest.param("preemption: no-way\n", "preemption must be true or false", id="preemption not a boolean"),
        pytest.param("preset: fast\n", "unknown preset 'fast'", id="an unknown preset"),
        pytest.param(
            "scores: [{name: NodeResourcesFit, scoringStrategy: {type: Fancy}}]\n",
            "scoringStrategy.type must be LeastAllocated, MostAllocated or RequestedToCapacityRatio",
            id="an unknown scoring strategy",
        ),
        pytest.param(
            "scores: [{name: NodeResourcesFit, scoringStrategy: {type: RequestedToCapacityRatio}}]\n",
            "needs requestedToCapacityRatio.shape",
            id="RequestedToCapacityRatio without a shape",
        ),
        pytest.param(
            "scores: [{name: NodeResourcesFit, scoringStrategy: {type: RequestedToCapacityRatio,"
            " requestedToCapacityRatio: {shape: [{utilization: 50, score: 1}, {utilization: 50, score: 2}]}}}]\n",
            "strictly increasing",
            id="a shape going back",
        ),
        pytest.param(
            "scores: [{name: NodeResourcesFit, scoringStrategy: {type: RequestedToCapacityRatio,"
            " requestedToCapacityRatio: {shape: [{utilization: 0, score: 11}]}}}]\n",
            "score must be a whole number 0..10",
            id="a shape score over 10",
        ),
        pytest.param(
            "scores: [{name: NodeResourcesFit, scoringStrategy: {resources: [{name: cpu, weight: 0}]}}]\n",
            "weight of cpu must be a whole number 1..100",
            id="a resource weight of 0",
        ),
        pytest.param(
            "scores: [{name: LeastAllocated, scoringStrategy: {}}]\n",
            "unknown key(s) ['scoringStrategy']",
            id="a scoring strategy on another score",
        ),
    ],
)
def test_mistakes_are_one_line_config_errors(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path, "my-scheduler")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(path)
    assert problem in message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load(path, "my-scheduler")
    assert str(caught.value).startswith(path)
    assert "\n" not in str(caught.value)


def test_an_unknown_key_in_a_score_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="wieght"):
        load(write(tmp_path, "scores: [{name: LeastAllocated, wieght: 5}]\n"), "my-scheduler")


def test_a_policy_listed_twice_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LeastAllocated"):
        load(write(tmp_path, "scores: [LeastAllocated, {name: LeastAllocated, weight: 2}]\n"), "my-scheduler")


def test_presets(tmp_path: Path) -> None:
    kube = load(write(tmp_path, "preset: default-scheduler\n"), "x")[0]
    assert [(p.name, w) for p, w in kube.scores] == [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("NodeResourcesFit", 1),
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("NodeResourcesBalancedAllocation", 1),
        ("ImageLocality", 1),
    ]
    assert [(p.name, w) for p, w in default_profile("x").scores] == [(p.name, w) for p, w in kube.scores]
    ours = load(write(tmp_path, "preset: my-scheduler\n"), "x")[0]
    assert [p.name for p, _ in ours.scores] == [
        "LeastAllocated",
        "SelectorSpread",
        "TaintToleration",
        "NodeAffinity",
        "PodTopologySpread",
    ]


def test_a_scoring_strategy_is_read(tmp_path: Path) -> None:
    text = (
        "scores:\n"
        "  - name: NodeResourcesFit\n"
        "    weight: 2\n"
        "    scoringStrategy:\n"
        "      type: RequestedToCapacityRatio\n"
        "      resources: [{name: cpu, weight: 3}, {name: nvidia.com/gpu, weight: 5}]\n"
        "      requestedToCapacityRatio: {shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]}\n"
    )
    ((plugin, weight),) = load(write(tmp_path, text), "x")[0].scores
    assert isinstance(plugin, NodeResourcesFit)
    assert weight == 2
    assert plugin.strategy == ScoringStrategy(
        "RequestedToCapacityRatio", (("cpu", 3), ("nvidia.com/gpu", 5)), ((0, 0), (100, 10))
    )


KUBE = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"


def test_a_kube_scheduler_configuration_starts_from_kube_defaults(tmp_path: Path) -> None:
    (profile,) = load(write(tmp_path, KUBE + "profiles: [{schedulerName: k}]\n"), "x")
    assert profile.scheduler_name == "k"
    assert names(profile) == names(default_profile("k"))


@pytest.mark.parametrize(
    "plugins, preemption",
    [
        pytest.param("{}", True, id="kube's default: on"),
        pytest.param("{postFilter: {disabled: [{name: DefaultPreemption}]}}", False, id="postFilter disabled"),
        pytest.param("{postFilter: {disabled: [{name: '*'}]}}", False, id="every postFilter plugin disabled"),
        pytest.param("{multiPoint: {disabled: [{name: DefaultPreemption}]}}", False, id="multiPoint disabled"),
        pytest.param(
            "{multiPoint: {disabled: [{name: '*'}]}, postFilter: {enabled: [{name: DefaultPreemption}]}}",
            True,
            id="disabled everywhere, enabled again",
        ),
    ],
)
def test_default_preemption_turns_preemption_on_and_off(tmp_path: Path, plugins: str, preemption: bool) -> None:
    (profile,) = load(write(tmp_path, KUBE + f"profiles: [{{schedulerName: k, plugins: {plugins}}}]\n"), "x")
    assert profile.preemption is preemption


def test_kube_plugins_are_enabled_disabled_and_weighted(tmp_path: Path) -> None:
    text = KUBE + (
        "profiles:\n"
        "  - plugins:\n"
        "      multiPoint: {disabled: [{name: ImageLocality}, {name: VolumeBinding}]}\n"
        "      filter: {disabled: [{name: NodePorts}]}\n"
        "      score:\n"
        "        disabled: [{name: '*'}]\n"
        "        enabled: [{name: NodeResourcesFit, weight: 5}, {name: TaintToleration}]\n"
        "    pluginConfig:\n"
        "      - name: NodeResourcesFit\n"
        "        args: {scoringStrategy: {type: MostAllocated, resources: [{name: cpu, weight: 1}]}}\n"
        "      - name: PodTopologySpread\n"
        "        args:\n"
        "          defaultingType: List\n"
        "          defaultConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]\n"
    )
    (profile,) = load(write(tmp_path, text), "x")
    filters, scores = names(profile)
    assert "NodePorts" not in filters and "PodTopologySpread" in filters
    assert scores == [("NodeResourcesFit", 5), ("TaintToleration", 1)]  # enabled again without a weight: 1
    fit = next(f for f in profile.filters if f.name == "NodeResourcesFit")
    assert isinstance(fit, NodeResourcesFit)
    assert fit.strategy == ScoringStrategy("MostAllocated", (("cpu", 1),))
    assert fit is profile.scores[0][0]  # one instance, made with its args, for both roles
    spread = next(f for f in profile.filters if f.name == "PodTopologySpread")
    assert isinstance(spread, PodTopologySpread)
    assert spread.defaults == ((1, "zone", "DoNotSchedule"),)


@pytest.mark.parametrize(
    "text, problem",
    [
        pytest.param("leaderElection: {leaderElect: true}\n", "not supported: leaderElection", id="a global setting"),
        pytest.param(
            "profiles: [{percentageOfNodesToScore: 50}]\n",
            "not supported: percentageOfNodesToScore",
            id="a profile setting",
        ),
        pytest.param(
            "profiles: [{pluginConfig: [{name: VolumeBinding, args: {bindTimeoutSeconds: -1}}]}]\n",
            "invalid BindTimeoutSeconds, should not be a negative value",
            id="a negative bind timeout",
        ),
        pytest.param(
            "profiles: [{plugins: {multiPoint: {enabled: [{name: DynamicResources}]}}}]\n",
            "DynamicResources is not supported by this scheduler",
            id="a kube plugin we do not have",
        ),
        pytest.param(
            "profiles: [{plugins: {score: {enabled: [{name: Magic}]}}}]\n",
            "unknown plugin 'Magic'",
            id="an unknown plugin",
        ),
        pytest.param(
            "profiles: [{plugins: {preScore: {disabled: [{name: '*'}]}}}]\n",
            "extension point(s) not supported: preScore",
            id="another extension point",
        ),
        pytest.param(
            "profiles: [{pluginConfig: [{name: InterPodAffinity, args: {hardPodAffinityWeight: 5}}]}]\n",
            "arguments are not supported for this plugin",
            id="args we do not take",
        ),
        pytest.param(
            "profiles: [{pluginConfig: [{name: PodTopologySpread, args: {defaultConstraints: "
            "[{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]}}]}]\n",
            "when .defaultingType is System, .defaultConstraints must be empty",
            id="System defaults with constraints",
        ),
    ],
)
def test_kube_configuration_mistakes_are_one_line(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(write(tmp_path, KUBE + text), "x")
    assert "\n" not in str(caught.value)
    assert problem in str(caught.value)


def test_another_api_version_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"apiVersion must be kubescheduler\.config\.k8s\.io/v1"):
        load(write(tmp_path, "apiVersion: v1beta3\nkind: KubeSchedulerConfiguration\n"), "x")


def test_volume_binding_takes_its_bind_timeout(tmp_path: Path) -> None:
    text = KUBE + "profiles: [{pluginConfig: [{name: VolumeBinding, args: {bindTimeoutSeconds: 5}}]}]\n"
    (profile,) = load(write(tmp_path, text), "x")
    binding = next(f for f in profile.filters if f.name == "VolumeBinding")
    assert isinstance(binding, VolumeBinding) and binding.bind_timeout == 5
    (default,) = load(write(tmp_path, KUBE), "x")
    assert next(f for f in default.filters if isinstance(f, VolumeBinding)).bind_timeout == 600
