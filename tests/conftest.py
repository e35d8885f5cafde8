import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
