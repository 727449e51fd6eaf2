"""The AWS CDK app: `cdk deploy --all` (or `python infra/app.py` to synthesize into cdk.out/).

Context: imageTag (the ECR tag every service runs, default "latest"), certificateArn (HTTPS on
the load balancer when given). docs/deploy.md walks through a deployment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import aws_cdk as cdk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shopstream_stack import ImagesStack, ShopstreamStack


def build_app(outdir: str | None = None) -> cdk.App:
    app = cdk.App(outdir=outdir) if outdir else cdk.App()
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION"))
    images = ImagesStack(app, "ShopstreamImages", env=env)
    ShopstreamStack(app, "Shopstream", repositories=images.repositories, env=env)
    return app


if __name__ == "__main__":
    build_app().synth()
