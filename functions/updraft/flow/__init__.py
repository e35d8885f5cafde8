"""The steps of a rollout, one per state machine task, in the order the flow runs them:

    admit.py     check_release: may an announced release start the group's rollout; acquire: the lock, the record
    plan.py      start_inventory, plan: which hosts need the update, in which waves
    wave.py      apply_wave: what holds the wave back, else the first step of its hosts
    check.py     check_hosts: every host in scope one step on; the wave's gate once they are all done
    bake.py      bake: the wave's alarms stay OK a while before its verdict holds
    stop.py      halt: roll back the scope; abort: start nothing more
    finish.py    finish: the outcome, once; settle: an execution that ended outside its own error handling
    triggers.py  withdraw: a release was pulled; rollback_on_alarm: a group's alarm after its rollout

Each step reads the rollout's record once, has the domain (updraft.domain) decide, and acts through the
adapters: observe.py looks at the hosts, effects.py carries out what their transitions ask for, context.py holds
what every step shares. Every step is safe to retry: it acts only on hosts whose recorded state asks for it,
and records each batch right after sending it.
"""

from updraft.domain.rollout_record import Rollout
from updraft.flow.admit import FORGED, acquire, check_release
from updraft.flow.bake import bake
from updraft.flow.check import check_hosts
from updraft.flow.finish import finish, settle
from updraft.flow.plan import plan, start_inventory
from updraft.flow.stop import abort, halt
from updraft.flow.triggers import rollback_on_alarm, withdraw
from updraft.flow.wave import apply_wave

__all__ = [
    "FORGED",
    "Rollout",
    "abort",
    "acquire",
    "apply_wave",
    "bake",
    "check_hosts",
    "check_release",
    "finish",
    "halt",
    "plan",
    "rollback_on_alarm",
    "settle",
    "start_inventory",
    "withdraw",
]
