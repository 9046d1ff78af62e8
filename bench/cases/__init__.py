"""The benchmark cases, in the order the table shows them. Each module has ``run(ctx) -> list[Row]``."""

from bench.cases import control_round_trip, idle_agents, tui_first_frame

ALL = [control_round_trip, idle_agents, tui_first_frame]
