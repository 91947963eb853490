import keras
import pytest

from keras_ssl import precision


def test_explicit_policies_pass_through():
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert precision.resolve_policy(name) == name


@pytest.mark.parametrize("native, expected", [(True, "mixed_bfloat16"), (False, "float32")])
def test_auto_on_a_cpu_follows_native_bfloat16(monkeypatch, native, expected):
    monkeypatch.setattr(precision, "cpu_has_native_bfloat16", lambda: native)
    assert precision.resolve_policy("auto") == expected


def test_set_policy_sets_the_global_policy():
    try:
        assert precision.set_policy("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_cpu_flags_are_read_from_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor: 0\nflags\t\t: fpu sse avx512f amx_bf16 amx_tile\n")
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda path, *a, **k: real_open(cpuinfo if path == "/proc/cpuinfo" else path, *a, **k),
    )
    assert precision.cpu_has_native_bfloat16()
    cpuinfo.write_text("flags\t\t: fpu sse avx2\n")
    assert not precision.cpu_has_native_bfloat16()


def test_unknown_policy():
    with pytest.raises(ValueError, match="Unknown precision policy 'fp8'"):
        precision.resolve_policy("fp8")
