"""CDK constructs for Updraft, one module per part; `synthesize` builds the template from a config."""

from stacks.synth import ConfigError, build_app, config_from_cdk_json, synthesize, validate_config
from stacks.updraft_stack import UpdraftStack

__all__ = [
    "ConfigError",
    "UpdraftStack",
    "build_app",
    "config_from_cdk_json",
    "synthesize",
    "validate_config",
]
