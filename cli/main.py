"""`updraft`: the operator's command line."""

from __future__ import annotations

import typer

app = typer.Typer(help="Staged, verified, self-rolling-back Bottlerocket updates for EC2 fleets.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Updraft's command line."""


@app.command()
def simulate(
    hosts: int = typer.Option(30, min=1, help="Hosts per group in the simulated fleet."),
    seed: int = typer.Option(7, help="The simulation's seed."),
) -> None:
    """Run the real pipeline for this cdk.json against a simulated fleet (no AWS account needed)."""
    from sim.demo import run  # the simulation needs the dev dependencies; import it only here

    raise typer.Exit(run(hosts, seed))
