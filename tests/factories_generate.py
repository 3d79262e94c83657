"""Three irregular communities drawn over the Shanghai Bund OSM sample (lon/lat, EPSG:4490), for generation.

Not the sample's tiles: a west community along the Bund, a north-east one over Lujiazui and a
south-east one, meeting along broken lines that share their vertices exactly (they tile their
union), each ~2–3 km², the Huangpu running through all three.
"""

from shapely.geometry import Polygon

THREE_COMMUNITIES = {
    "310101001001": (
        "外滩社区",
        Polygon(
            [
                (121.4830, 31.2290),
                (121.4990, 31.2280),
                (121.4975, 31.2330),
                (121.5010, 31.2390),
                (121.4995, 31.2440),
                (121.5020, 31.2495),
                (121.4840, 31.2470),
            ]
        ),
    ),
    "310101001002": (
        "陆家嘴社区",
        Polygon(
            [
                (121.5010, 31.2390),
                (121.5100, 31.2370),
                (121.5185, 31.2390),
                (121.5190, 31.2480),
                (121.5020, 31.2495),
                (121.4995, 31.2440),
            ]
        ),
    ),
    "310101001003": (
        "浦东南路社区",
        Polygon(
            [
                (121.4990, 31.2280),
                (121.5180, 31.2300),
                (121.5185, 31.2390),
                (121.5100, 31.2370),
                (121.5010, 31.2390),
                (121.4975, 31.2330),
            ]
        ),
    ),
}
