from setuptools import find_packages, setup

setup(
    name="keras-anime-gan",
    version="0.1.0",
    description="Train, compare, evaluate, explore and serve GANs that draw anime faces (Keras 3 / TensorFlow 2).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_anime_gan", "keras_anime_gan.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "numpy",
        "pillow",
        "matplotlib",
        "scipy",
        "tqdm",
        "google-crc32c",  # TFRecord checksums: the converter writes records without importing TensorFlow
        "simplejpeg",  # the converter decodes plain JPEGs with it: Pillow's libjpeg-turbo pixels, less overhead
        "tensorboard",  # tf.summary and the TensorBoard callback; TensorFlow 2.21 no longer installs it
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist"],
        "video": ["imageio", "imageio-ffmpeg"],
        "bench": ["torch"],
    },
    entry_points={"console_scripts": ["keras-anime-gan=keras_anime_gan.cli:main"]},
)
