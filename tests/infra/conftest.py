from __future__ import annotations

import os
import sys

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    """The CDK app synthesized once per session, offline: no Docker, no credentials."""
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    sys.path.insert(0, str(ROOT / "infra"))
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    assembly = build_app(str(outdir)).synth()
    return {stack.stack_name: stack for stack in assembly.stacks}, outdir


@pytest.fixture(scope="session")
def template(synthesized):
    from aws_cdk.assertions import Template

    stacks, _ = synthesized
    return Template.from_json(stacks["Shopstream"].template)


@pytest.fixture(scope="session")
def images_template(synthesized):
    from aws_cdk.assertions import Template

    stacks, _ = synthesized
    return Template.from_json(stacks["ShopstreamImages"].template)


def resources(template, kind: str) -> dict[str, dict]:
    return template.find_resources(kind)

