// libpng's simplified API (png_image), used by ShapeWorld's PNG reader and writer.
#include <png.h>
