"""`palmbrush lab worker`: being built (a placeholder so the lab's parser loads)."""


def add_parser(sub) -> None:
    sub.add_parser("worker", help="(being built)")
