import sharp from 'sharp';

/** Renders SVG text to PNG bytes (sharp/librsvg; text uses the system's fonts). */
export async function svgToPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg, 'utf8')).png({ compressionLevel: 9 }).toBuffer();
}
