"""The benchmark cases, in the order the table shows them. Each module has ``run(ctx) -> list[Row]``."""

from bench.cases import (
    control_round_trip,
    desktop_fps,
    exec_round_trip,
    fanout,
    file_transfer,
    idle_agents,
    inference_cluster,
    output_throughput,
    terminal_echo,
    terminal_render,
    tui_first_frame,
    tui_stall,
    tunnel_http,
)

# Order matters where a case grows the shared control plane: the first frame is measured with the small
# fleet a new user has, and idle_agents before fanout (its per-agent memory needs a server that no bigger
# fleet has grown yet).
ALL = [
    exec_round_trip,
    tui_first_frame,
    output_throughput,
    idle_agents,
    fanout,
    file_transfer,
    terminal_echo,
    terminal_render,
    desktop_fps,
    control_round_trip,
    tui_stall,
    tunnel_http,
    inference_cluster,
]
