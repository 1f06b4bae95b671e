// What salon-video adds to twilio-video's API, typed: the server's address,
// the default export, the error classes by name. Compiled against
// salon-video's types only (see ../check).

import Video, { ConnectOptions, Room, createTwilioError, errors } from 'salon-video';

export async function joinSalon(token: string): Promise<Room> {
  const options: ConnectOptions = { url: 'https://video.example.com', audio: true, video: { width: 640 } };
  const room = await Video.connect(token, options);
  room.on('disconnected', (_room, error) => {
    if (error instanceof errors.RoomCompletedError) console.log('the room ended');
  });
  return room;
}

export const fullRoom = createTwilioError(53105);
export const preflight = Video.runPreflight('token', { url: 'https://video.example.com', duration: 3000 });
