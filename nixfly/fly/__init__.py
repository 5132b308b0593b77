"""Fly.io as a deploy target: ``target`` applies the deploy through flyctl, ``observe`` reads Fly's state
concurrently, ``plan`` decides what to change, ``verify`` judges a release's health."""

from nixfly.fly.target import FlyTarget

__all__ = ["FlyTarget"]
