"""visionzoo-convert parses its arguments as the other commands do (parse_cli): the same --help layout,
unknown options refused with suggestions, bad values in the recipe schema's words, one line and exit 2."""

import subprocess
import sys

import pytest

from script_utils import error_lines, script_env
from visionzoo.cli import format_error
from visionzoo.cli.convert import main
from visionzoo.errors import ConfigError

USAGE = "usage: visionzoo-convert SRC --model NAME[.TAG] -o OUT.ckpt [--num_classes N]"


def test_help_lists_the_arguments_and_only_the_keys_convert_reads(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(USAGE + "\n\narguments:\n  SRC ")
    assert "  -o, --output OUT.ckpt  the .ckpt to write\n" in out
    keys = out.split("Recipe keys (these as --key value):\n")[1]
    assert [line.split()[0] for line in keys.splitlines() if line.startswith("  --")] == ["--model", "--num_classes"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "vgg11"], f"convert needs a source checkpoint SRC; {USAGE}"),
        (["a.pth", "--model", "vgg11"], f"convert needs -o OUT.ckpt; {USAGE}"),
        (["a.pth", "-o", "b.ckpt"], f"convert needs --model NAME[.TAG] (or -c RECIPE); {USAGE}"),
        (["a.pth", "-o", "b.ckpt", "--modle", "vgg11"], "unknown option '--modle'; did you mean --model?"),
        (["a.pth", "--model", "vgg11", "-o", "b.ckpt", "--lr", "1"], "unknown option '--lr'; see --help for the keys"),
        (
            ["a.pth", "c.pth", "--model", "vgg11", "-o", "b.ckpt"],
            "unexpected argument 'c.pth'; options look like --key value (see --help)",
        ),
        (
            ["a.pth", "--model", "vgg11", "-o", "b.ckpt", "--num_classes", "x"],
            "key 'num_classes' must be an integer, got 'x'",
        ),
        (
            ["a.pth", "--model", "vgg11x", "-o", "b.ckpt"],
            "key 'model': unknown model 'vgg11x'; did you mean: vgg11, vgg13, vgg16?",
        ),
    ],
)
def test_bad_arguments_are_refused_in_the_other_commands_words(argv, message):
    with pytest.raises(ConfigError) as e:
        main(argv)
    assert format_error(e.value) == message


def test_a_bad_argument_is_one_line_and_exit_status_2(tmp_path):
    cmd = [sys.executable, "-m", "visionzoo.convert", "a.pth", "--model", "vgg11", "-o", "b.ckpt", "--lr", "1"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2
    assert error_lines(proc) == ["error: unknown option '--lr'; see --help for the keys"]
    assert not (tmp_path / "b.ckpt").exists()
