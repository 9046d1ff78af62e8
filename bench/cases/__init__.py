"""The benchmark cases, in the order the table shows them. Each module has ``run(ctx) -> list[Row]``."""

from bench.cases import (
    control_round_trip,
    exec_round_trip,
    idle_agents,
    output_throughput,
    tui_first_frame,
)

ALL = [exec_round_trip, output_throughput, control_round_trip, idle_agents, tui_first_frame]
