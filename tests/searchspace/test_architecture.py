"""Architecture: round trips (JSON, string form), canonical JSON, resolving, and error messages."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from searchspace import Architecture, ArchitectureError, known_architectures, list_spaces, load_space
from searchspace.architecture import ARCH_FORMAT, ARCH_VERSION
from searchspace.blocks import block_type_names
from searchspace.resolve import resolve_architecture

KNOWN = known_architectures()
N_SEEDS = 200
SPACES = list_spaces()


def _samples(space_name: str) -> list[Architecture]:
    space = load_space(space_name)
    return [space.sample(seed) for seed in range(N_SEEDS)]


def _assert_same(a: Architecture, b: Architecture) -> None:
    assert b == a
    assert b.to_dict() == a.to_dict()  # == compares canonical JSON; compare the data too
    assert b.arch_id == a.arch_id


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("name", list(KNOWN))
def test_known_net_round_trips(name: str) -> None:
    arch = KNOWN[name]
    _assert_same(arch, Architecture.from_json(arch.to_json()))
    _assert_same(arch, Architecture.from_json(arch.to_json(indent=2)))
    _assert_same(arch, Architecture.from_dict(arch.to_dict()))
    _assert_same(arch, Architecture.decode(arch.encode()))
    assert Architecture.decode(arch.encode()).encode() == arch.encode()


@pytest.mark.parametrize("space_name", SPACES)
def test_sampled_archs_round_trip(space_name: str) -> None:
    failures = []
    for seed, arch in enumerate(_samples(space_name)):
        for how, again in [
            ("json", lambda a: Architecture.from_json(a.to_json())),
            ("string", lambda a: Architecture.decode(a.encode())),
        ]:
            try:
                back = again(arch)
            except ArchitectureError as exc:
                failures.append(f"seed {seed} ({how}): {exc}\n  {arch.encode()}")
                continue
            if back != arch or back.to_dict() != arch.to_dict():
                failures.append(f"seed {seed} ({how}): differs after the round trip\n  {arch.encode()}")
    assert not failures, f"{len(failures)} round trips failed in {space_name}:\n" + "\n".join(failures[:5])


@settings(max_examples=60, deadline=None)
@given(space_name=st.sampled_from(SPACES), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_sample_round_trips(space_name: str, seed: int) -> None:
    arch = load_space(space_name).sample(seed)
    _assert_same(arch, Architecture.from_json(arch.to_json()))
    _assert_same(arch, Architecture.decode(arch.encode()))
    assert str(arch) == arch.encode()


def _is_canonical(text: str) -> bool:
    return text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("name", list(KNOWN))
def test_to_json_is_canonical_and_stable(name: str) -> None:
    arch = KNOWN[name]
    text = arch.to_json()
    assert _is_canonical(text)
    assert " " not in text and "\n" not in text
    assert text == arch.to_json()  # stable across calls
    assert Architecture.from_json(arch.to_json(indent=2)).to_json() == text  # and across a reload
    assert text.startswith('{"blocks":[{"act":')  # sorted keys, down to the blocks' fields
    data = json.loads(text)
    assert data["format"] == ARCH_FORMAT
    assert data["version"] == ARCH_VERSION
    indented = arch.to_json(indent=2)
    assert json.loads(indented) == data
    assert "\n  " in indented


def test_to_json_is_canonical_for_samples() -> None:
    for space_name in SPACES:
        for seed, arch in enumerate(_samples(space_name)[:50]):
            assert _is_canonical(arch.to_json()), (space_name, seed)


def test_key_order_of_the_input_does_not_matter() -> None:
    arch = KNOWN["mobilenet_v3_small"]
    data = arch.to_dict()
    reordered = {k: data[k] for k in reversed(list(data))}
    reordered["blocks"] = [{k: b[k] for k in reversed(list(b))} for b in data["blocks"]]
    text = json.dumps(reordered, indent=4)
    assert text != arch.to_json()
    back = Architecture.from_json(text)
    assert back.to_json() == arch.to_json()
    assert back.arch_id == arch.arch_id


def test_defaults_may_be_left_out() -> None:
    arch = KNOWN["mobilenet_v2"]
    minimal = arch.model_dump(mode="json", exclude_defaults=True)
    assert "format" not in minimal and "version" not in minimal
    assert "mid2" not in minimal["blocks"][0]
    _assert_same(arch, Architecture.from_dict(minimal))


def test_save_and_load(tmp_path) -> None:
    arch = KNOWN["mobiledet_dsp"]
    path = tmp_path / "net.json"
    arch.save(path)
    _assert_same(arch, Architecture.load(path))
    assert path.read_text(encoding="utf-8").endswith("}\n")


def test_architecture_is_frozen_and_hashable() -> None:
    arch = KNOWN["mobilenet_v2"]
    with pytest.raises(ValidationError, match="frozen"):
        arch.resolution = 192  # type: ignore[misc]
    copy_ = Architecture.from_json(arch.to_json())
    assert hash(copy_) == hash(arch)
    assert len({arch, copy_, KNOWN["mobilenet_v1"]}) == 2


# ------------------------------------------------------------------- resolve
def test_resolve_known_name() -> None:
    assert resolve_architecture("mobilenet_v3_large") == KNOWN["mobilenet_v3_large"]
    assert resolve_architecture("  mnasnet_b1_0.5\n") == KNOWN["mnasnet_b1_0.5"]


def test_resolve_string_form() -> None:
    arch = KNOWN["mobiledet_edgetpu"]
    assert resolve_architecture(arch.encode()) == arch
    assert resolve_architecture("r32_i3|conv_k3_c16_relu|skip_c16|head_n10") == Architecture.decode(
        "r32_i3|conv_k3_c16_relu|skip_c16|head_n10"
    )


def test_resolve_json_file_and_text(tmp_path) -> None:
    arch = KNOWN["mobilenet_v3_small"]
    path = tmp_path / "small.json"
    arch.save(path)
    assert resolve_architecture(str(path)) == arch
    assert resolve_architecture(arch.to_json()) == arch


def test_resolve_unknown_reference_names_the_problem(tmp_path) -> None:
    with pytest.raises(ArchitectureError) as info:
        resolve_architecture("mobilenet_v9")
    message = str(info.value)
    assert repr("mobilenet_v9") in message
    assert "is not a known net (mobilenet_v1, mobilenet_v2" in message
    assert "an existing JSON file" in message
    assert "architecture string" in message
    # something that looks like a path says the file is missing
    missing = tmp_path / "missing.json"
    with pytest.raises(ArchitectureError, match=f"architecture file {missing} does not exist"):
        resolve_architecture(str(missing))


def test_resolve_bad_file_content(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(ArchitectureError, match="an architecture must be a JSON object, got list"):
        resolve_architecture(str(path))
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ArchitectureError, match="not valid JSON"):
        resolve_architecture(str(path))


def test_resolve_bad_string_form() -> None:
    with pytest.raises(ArchitectureError, match=r"blocks\[0\]: cannot read token 'q'"):
        resolve_architecture("r32_i3|conv_k3_c16_relu|skip_q_c16|head_n10")


# ------------------------------------------------------------ invalid input
V2 = KNOWN["mobilenet_v2"].to_dict()  # blocks[0]: 32->16 t=1; blocks[1]: 16->24 s2; blocks[2]: 24->24 residual
V3 = KNOWN["mobilenet_v3_large"].to_dict()  # blocks[3]: 24->40 s2 with SE (hsigmoid)


def _edit(base: dict[str, Any], edit: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    edit(data)
    return data


INVALID_DICTS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown block type": (
        _edit(V2, lambda d: d["blocks"][1].update(type="mbconv")),
        r"blocks\[1\]\.type: unknown block type 'mbconv'; expected one of " + ", ".join(block_type_names()),
    ),
    "even kernel": (
        _edit(V2, lambda d: d["blocks"][1].update(k=4)),
        r"blocks\[1\]\.k: kernel size must be odd, got 4",
    ),
    "field the type does not use": (
        _edit(V2, lambda d: d["stem"].update(mid=8)),
        r"stem\.mid: block type 'conv' does not use 'mid'; leave it out \(got 8\)",
    ),
    "mid2 on an ibn block": (
        _edit(V2, lambda d: d["blocks"][2].update(mid2=16)),
        r"blocks\[2\]\.mid2: block type 'ibn' does not use 'mid2'",
    ),
    "residual with stride 2": (
        _edit(V2, lambda d: d["blocks"][1].update(residual=True)),
        r"blocks\[1\]\.residual: a shortcut needs stride 1 and cin == cout, got stride=2, cin=16, cout=24",
    ),
    "residual with cin != cout": (
        _edit(V2, lambda d: d["blocks"][0].update(residual=True)),
        r"blocks\[0\]\.residual: a shortcut needs stride 1 and cin == cout, got stride=1, cin=32, cout=16",
    ),
    "residual on a type without shortcut": (
        _edit(KNOWN["mobilenet_v1"].to_dict(), lambda d: d["blocks"][2].update(residual=True)),
        r"blocks\[2\]\.residual: block type 'dsconv' has no shortcut",
    ),
    "channel chain mismatch": (
        _edit(V2, lambda d: d["blocks"][1].update(cin=17)),
        r"blocks\[1\]\.cin: must equal the previous layer's output channels 16, got 17",
    ),
    "stem cin != in_channels": (
        _edit(V2, lambda d: d["stem"].update(cin=4)),
        r"stem\.cin: must equal in_channels=3, got 4",
    ),
    "stem not a conv": (
        _edit(V2, lambda d: d["stem"].update(type="dsconv")),
        r"stem\.type: the stem must be a 'conv' block, got 'dsconv'",
    ),
    "SE without gate": (
        _edit(V3, lambda d: d["blocks"][3].update(se_gate=None)),
        r"blocks\[3\]\.se_gate: a block with squeeze-excite needs se_gate 'sigmoid' or 'hsigmoid'",
    ),
    "gate without SE": (
        _edit(V2, lambda d: d["blocks"][0].update(se_gate="sigmoid")),
        r"blocks\[0\]\.se_gate: only blocks with squeeze-excite \(se > 0\) take se_gate",
    ),
    "block without activation": (
        _edit(V2, lambda d: d["blocks"][4].update(act=None)),
        r"blocks\[4\]\.act: block type 'ibn' needs an activation",
    ),
    "ibn narrower than its input": (
        _edit(V2, lambda d: d["blocks"][1].update(mid=8)),
        r"blocks\[1\]\.mid: expanded width must be >= cin=16, got 8",
    ),
    "unknown activation": (
        _edit(V2, lambda d: d["blocks"][0].update(act="gelu")),
        r"blocks\[0\]\.act: Input should be 'relu', 'relu6', 'hswish' or 'swish', got 'gelu'",
    ),
    "stride 3": (
        _edit(V2, lambda d: d["blocks"][5].update(stride=3)),
        r"blocks\[5\]\.stride: Input should be 1 or 2, got 3",
    ),
    "unknown key in a block": (
        _edit(V2, lambda d: d["blocks"][0].update(kernel=3)),
        r"blocks\[0\]\.kernel: unknown key \(not allowed here; check the spelling\)",
    ),
    "unknown key at the top": (
        _edit(V2, lambda d: d.update(resolutoin=224)),
        r"(?m)^resolutoin: unknown key",
    ),
    "missing required field": (
        _edit(V2, lambda d: d["head"].pop("classes")),
        r"head\.classes: required field is missing",
    ),
    "missing resolution": (
        _edit(V2, lambda d: d.pop("resolution")),
        r"(?m)^resolution: required field is missing",
    ),
    "resolution too small": (
        _edit(V2, lambda d: d.update(resolution=4)),
        r"(?m)^resolution: Input should be greater than or equal to 8",
    ),
    "wrong format name": (
        _edit(V2, lambda d: d.update(format="hwnas.space")),
        r"^format: expected 'hwnas\.architecture', got 'hwnas\.space' \(is this an architecture file\?\)",
    ),
    "future format version": (
        _edit(V2, lambda d: d.update(version=ARCH_VERSION + 1)),
        rf"version: architecture format version {ARCH_VERSION + 1} is not supported \(this hwnas reads "
        rf"{ARCH_VERSION}\); it was written by a newer hwnas; upgrade hwnas to read it",
    ),
    "future version with keys this hwnas does not know": (
        _edit(V2, lambda d: d.update(version=ARCH_VERSION + 1, quantization="int8")),
        r"upgrade hwnas to read it",
    ),
    "old format version": (
        _edit(V2, lambda d: d.update(version=0)),
        r"version: architecture format version 0 is not supported .*; re-export it with this hwnas",
    ),
    "head conv without act": (
        _edit(V2, lambda d: d["head"].update(act=None)),
        r"head\.act: a head conv needs an activation",
    ),
    "head act without conv": (
        _edit(KNOWN["mobilenet_v1"].to_dict(), lambda d: d["head"].update(act="relu")),
        r"head\.act: only given with a head conv \(conv > 0\)",
    ),
    "hidden layer without act": (
        _edit(V3, lambda d: d["head"].update(hidden_act=None)),
        r"head\.hidden_act: a hidden linear layer needs an activation",
    ),
    "dropout >= 1": (
        _edit(V2, lambda d: d["head"].update(dropout=1.0)),
        r"head\.dropout: Input should be less than 1",
    ),
    "blocks not a list": (
        _edit(V2, lambda d: d.update(blocks=5)),
        r"(?m)^blocks: Input should be a valid tuple",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_DICTS))
def test_invalid_architecture_is_rejected_with_its_field_path(case: str) -> None:
    data, message = INVALID_DICTS[case]
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_dict(data)
    # the same through JSON text
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_json(json.dumps(data))


def test_every_problem_is_reported_once_per_line() -> None:
    data = _edit(
        V2, lambda d: (d["blocks"][1].update(k=4), d["blocks"][6].update(act="gelu"), d["head"].pop("classes"))
    )
    with pytest.raises(ArchitectureError) as info:
        Architecture.from_dict(data)
    lines = str(info.value).splitlines()
    assert lines[0] == "invalid architecture:"
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["blocks[1].k", "blocks[6].act", "head.classes"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", r"^not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2"),
        ("", r"^not valid JSON"),
        ('{"resolution": 224,}', r"^not valid JSON"),
        ("[1, 2]", r"^an architecture must be a JSON object, got list$"),
        ("42", r"^an architecture must be a JSON object, got int$"),
        ('"mobilenet_v2"', r"^an architecture must be a JSON object, got str$"),
        ("null", r"^an architecture must be a JSON object, got NoneType$"),
    ],
)
def test_bad_json_text(text: str, message: str) -> None:
    with pytest.raises(ArchitectureError, match=message):
        Architecture.from_json(text)


def test_non_object_dict_input() -> None:
    with pytest.raises(ArchitectureError, match=r"must be a JSON object, got tuple"):
        Architecture.from_dict((1, 2))  # type: ignore[arg-type]


def test_load_missing_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ArchitectureError, match=r"cannot read architecture file .*nope\.json"):
        Architecture.load(path)


# --------------------------------------------------------- invalid strings
V2_STR = KNOWN["mobilenet_v2"].encode()
assert "|ibn_k3_s2_e6_c24_relu6|" in V2_STR and V2_STR.endswith("|head_c1280_relu6_d0.2_n1000")


def _str_edit(old: str, new: str) -> str:
    assert old in V2_STR
    return V2_STR.replace(old, new, 1)


INVALID_STRINGS: dict[str, tuple[str, str]] = {
    "bad token": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "ibn_k3_s2_x6_c24_relu6"),
        r"^blocks\[1\]: cannot read token 'x6' in 'ibn_k3_s2_x6_c24_relu6' \(expected k<k>, s<stride>",
    ),
    "unknown activation token": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "ibn_k3_s2_e6_c24_gelu"),
        r"^blocks\[1\]: cannot read token 'gelu'.*an activation \(relu6, relu, hswish, swish\) or nr\)",
    ),
    "no c<cout>": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "ibn_k3_s2_e6_relu6"),
        r"^blocks\[1\]: block 'ibn_k3_s2_e6_relu6' has no output channels \(c<cout>\)",
    ),
    "unknown block type": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "mbconv_k3_s2_e6_c24_relu6"),
        r"^blocks\[1\]: unknown block type 'mbconv' in 'mbconv_k3_s2_e6_c24_relu6'; expected one of "
        + ", ".join(block_type_names()),
    ),
    "fractional width": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "ibn_k3_s2_e6_c24.5_relu6"),
        r"^blocks\[1\]: token 'c24\.5' in 'ibn_k3_s2_e6_c24\.5_relu6' needs a whole number",
    ),
    "stem without c<cout>": (
        _str_edit("conv_k3_s2_c32_relu6", "conv_k3_s2_relu6"),
        r"^stem: block 'conv_k3_s2_relu6' has no output channels \(c<cout>\)",
    ),
    "stem not a conv": (
        _str_edit("conv_k3_s2_c32_relu6", "dsconv_k3_s2_c32_relu6"),
        r"^invalid architecture:\nstem\.type: the stem must be a 'conv' block, got 'dsconv'",
    ),
    "bad header": (
        _str_edit("r224_i3", "r224"),
        r"^header: expected 'r<resolution>_i<in channels>', got 'r224'",
    ),
    "resolution too small": (
        _str_edit("r224_i3", "r4_i3"),
        r"^invalid architecture:\nresolution: Input should be greater than or equal to 8",
    ),
    "no '|'": ("conv_k3_s2_c32_relu6", r"^an architecture string has '\|'-separated parts"),
    "too few parts": ("r224_i3|head_n10", r"^an architecture string needs a header, a stem and a head"),
    "head without n<classes>": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|head_c1280_relu6_d0.2"),
        r"^head: 'head_c1280_relu6_d0\.2' has no number of classes \(n<classes>\)",
    ),
    "head activation in the wrong place": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|head_relu6_c1280_n1000"),
        r"^head: activation 'relu6' must follow c<conv> or h<hidden>",
    ),
    "bad head token": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|head_c1280_relu6_x2_n1000"),
        r"^head: cannot read token 'x2' in 'head_c1280_relu6_x2_n1000'",
    ),
    "last part not a head": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|ibn_k3_e6_c320_relu6"),
        r"^head: the last part must start with 'head', got 'ibn_k3_e6_c320_relu6'",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_STRINGS))
def test_invalid_string_form_is_rejected(case: str) -> None:
    text, message = INVALID_STRINGS[case]
    with pytest.raises(ArchitectureError, match=message):
        Architecture.decode(text)


def test_decode_rejects_non_strings() -> None:
    with pytest.raises(ArchitectureError, match=r"'\|'-separated parts"):
        Architecture.decode(None)  # type: ignore[arg-type]


# A block or head that reads fine but is invalid should name the field by the
# same path as the JSON form does ("blocks[1].k"), so that callers (CLI, API)
# can point at it the same way whichever form the user wrote.
STRING_FIELD_ERRORS: dict[str, tuple[str, str]] = {
    "even kernel": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "ibn_k4_s2_e6_c24_relu6"),
        r"blocks\[1\]\.k: kernel size must be odd, got 4",
    ),
    "field the type does not use": (
        _str_edit("ibn_k3_s2_e6_c24_relu6", "conv_k3_s2_e6_c24_relu6"),
        r"blocks\[1\]\.mid: block type 'conv' does not use 'mid'",
    ),
    "head conv without act": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|head_c1280_d0.2_n1000"),
        r"head\.act: a head conv needs an activation",
    ),
    "dropout >= 1": (
        _str_edit("|head_c1280_relu6_d0.2_n1000", "|head_c1280_relu6_d1_n1000"),
        r"head\.dropout: Input should be less than 1",
    ),
}


@pytest.mark.parametrize("case", list(STRING_FIELD_ERRORS))
def test_invalid_string_form_names_the_field_path(case: str) -> None:
    text, message = STRING_FIELD_ERRORS[case]
    with pytest.raises(ArchitectureError, match=message):
        Architecture.decode(text)


def test_string_form_accepts_what_it_writes() -> None:
    text = "r32_i3|conv_k3_c16_relu|ibn_k3_e1_c16_relu_nr|ibn_k5_s2_e4_se0.25_sg_c24_hswish|skip_c24|head_n10"
    arch = Architecture.decode(text)
    assert arch.encode() == text
    assert not arch.blocks[0].residual
    assert arch.blocks[1].se == 16 and arch.blocks[1].se_gate == "sigmoid"
    assert arch.blocks[2].is_identity
    assert re.fullmatch(r"[0-9a-f]{16}", arch.arch_id)


def test_model_copy_validates_and_recomputes_the_id() -> None:
    arch = KNOWN["mobilenet_v2"]
    original = arch.arch_id
    smaller = arch.model_copy(update={"resolution": 64})
    assert smaller.arch_id != original
    assert smaller.arch_id == Architecture.from_json(smaller.to_json()).arch_id
    bad_block = arch.blocks[1].model_copy(update={"k": 4})
    with pytest.raises(ArchitectureError, match="kernel size must be odd"):
        arch.model_copy(update={"blocks": (arch.blocks[0], bad_block, *arch.blocks[2:])})
    with pytest.raises(ArchitectureError, match="resolution"):
        arch.model_copy(update={"resolution": 2})
