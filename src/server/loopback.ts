/** Whether an IP address is this machine's: 127/8 or ::1, also as an IPv4-mapped IPv6 address. */
export const isLoopbackAddress = (address: string): boolean => address === '::1' || /^(?:::ffff:)?127\.\d+\.\d+\.\d+$/i.test(address);

/**
 * Whether a host name is this machine's by definition (RFC 6761 `localhost`, 127/8, ::1), as a
 * URL's `hostname` gives it (`[::1]`) or as an address to listen on (`::1`).
 */
export const isLoopbackHost = (hostname: string): boolean =>
  hostname === 'localhost' || hostname.endsWith('.localhost') || hostname === '[::1]' || isLoopbackAddress(hostname);
