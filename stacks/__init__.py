"""CDK constructs for Updraft, one module per part; `synthesize` builds the template from a config."""

from stacks.synth import build_app, config_from_cdk_json, synthesize
from stacks.updraft_stack import UpdraftStack
from updraft.config_file import ConfigError, validate_config

__all__ = [
    "ConfigError",
    "UpdraftStack",
    "build_app",
    "config_from_cdk_json",
    "synthesize",
    "validate_config",
]
