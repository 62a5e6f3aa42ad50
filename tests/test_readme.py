"""The README's two commands are what CI and the demo actually run."""

import os
import re

from script_utils import REPO


def _readme_commands():
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_two_commands():
    install_demo, install_test = _readme_commands()[:2]
    assert install_demo.startswith('python -m pip install -e ".[demo]" && python train.py -c configs/')
    assert install_test == 'python -m pip install -e ".[test]" && python -m pytest -q'


def test_ci_runs_the_readme_test_command():
    ci = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
    test_command = _readme_commands()[1].replace("python -m pip install", "python -m pip install -q")
    assert test_command in ci


def test_demo_recipe_exists_and_is_the_one_validated():
    demo = _readme_commands()[0]
    recipes = re.findall(r"-c (\S+\.yaml)", demo)
    assert len(recipes) == 2 and recipes[0] == recipes[1]
    assert os.path.isfile(os.path.join(REPO, recipes[0]))


def _readme():
    return " ".join(open(os.path.join(REPO, "README.md"), encoding="utf-8").read().split())


def test_the_demo_claim_is_what_the_demo_test_asserts():
    from test_demo import CLAIMED_TOP1, HELD_OUT

    text = _readme()
    assert f"reaches at least {CLAIMED_TOP1:.0%} top-1 on the held-out digits" in text
    assert f'"num_samples": {HELD_OUT}}}' in text and f"{HELD_OUT} held-out images" in text


def test_the_compiler_requirement_and_fallback_are_named_as_the_build_does_them():
    from visionzoo.ops._build import CXXFLAGS
    from visionzoo.runtime import FAST_OPS_ENV

    text = _readme()
    assert "-std=c++17" in CXXFLAGS and "-fopenmp" in CXXFLAGS
    assert "it needs a C++17 compiler with OpenMP (`$CXX`, else `g++`, else `c++`" in text
    assert "everything runs on MindSpore's standard operators" in text
    assert f"`python -m visionzoo.ops build` succeeds; with `{FAST_OPS_ENV}=require` it is an error instead" in text
