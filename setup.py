"""r1jax: DeepSeek-R1-style reinforcement learning of language models in JAX."""

from setuptools import find_packages, setup

# Ranges are the versions this project is tested with (lower bound) up to the next major
# release that may break the APIs used here.
INSTALL_REQUIRES = [
    "jax>=0.7.0,<0.11",
    "flax>=0.11.0,<0.13",
    "optax>=0.2.5,<0.3",
    "orbax-checkpoint>=0.11.0,<0.13",
    "chex>=0.1.89,<0.2",
    "numpy>=1.26,<3",
    "sentencepiece>=0.2.0,<0.3",
    "tokenizers>=0.21,<0.24",
    "safetensors>=0.5,<0.9",
    "gguf>=0.16,<0.20",
    "huggingface_hub>=0.30,<3",
    "jinja2>=3.1,<4",
    "tqdm>=4.66,<5",
    "sympy>=1.13,<2",
    "tensorflow-datasets>=4.9.7,<5",
    # The main job draws its curves and writes TensorBoard event files with the base install:
    # tensorboardX writes them (87 kB, needs only numpy, packaging and protobuf; TensorBoard's
    # own writer needs TensorFlow), tensorboard shows and reads them.
    "matplotlib>=3.8,<4",
    "tensorboard>=2.16,<3",
    "tensorboardX>=2.6,<3",
]

EXTRAS = {
    # pytest and xdist (the suite runs in two worker processes; tested with 3.8.0), the notebook
    # runner and math-verify (the maths-backend agreement tests); torch and transformers are
    # optional parity peers, not required.
    "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "nbclient>=0.10,<0.12",
             "nbformat>=5.10,<6", "ipykernel>=6.29,<8", "math-verify[antlr4_13_2]>=0.9.0,<0.10", "datasets>=5.2,<6", "wandb>=0.31,<1"],
    # Kept so `pip install r1jax[plots]` still resolves; both are base dependencies now.
    "plots": ["matplotlib>=3.8,<4", "tensorboard>=2.16,<3"],
    "notebooks": ["matplotlib>=3.8,<4", "jupyter>=1.0,<2"],
    "gpu": ["jax[cuda12]>=0.7.0,<0.11"],
    "tpu": ["jax[tpu]>=0.7.0,<0.11"],
    # The math-verify grading backend (rewards.math_verify_backend); tested with 0.9.0.
    "mathverify": ["math-verify[antlr4_13_2]>=0.9.0,<0.10"],
    # The "hf" task: Hugging Face `datasets` as a data source (tested with 5.2.0).
    "datasets": ["datasets>=5.2,<6"],
    # Weights & Biases tracking (`--set tracking=wandb`; tested with 0.31.0, offline too).
    "wandb": ["wandb>=0.31,<1"],
    # Parity scripts and benchmarks against Hugging Face; never imported by the package.
    "parity": ["torch>=2.4", "transformers>=4.50", "accelerate>=1.0", "trl>=1.10,<2"],
}

setup(
    name="r1jax",
    version="0.1.0",
    description="DeepSeek-R1-style RL (GRPO, Dr. GRPO, DAPO, GSPO) for language models in JAX",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["r1jax", "r1jax.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["r1jax=r1jax.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
